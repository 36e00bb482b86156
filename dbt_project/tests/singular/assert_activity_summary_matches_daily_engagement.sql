{#- The activity mix of a school-day adds up to that school-day's events and to 100 percent. -#}
{{ config(meta={'dagster': {'ref': {'name': 'fct_activity_summary'}}}) }}
with

summary as (

    select
        activity_date,
        org_id,
        sum(events) as events,
        sum(share_of_events) as share
    from {{ ref('fct_activity_summary') }}
    group by activity_date, org_id

),

engagement as (

    select
        activity_date,
        org_id,
        events
    from {{ ref('fct_daily_engagement') }}

)

select
    summary.*,
    engagement.events as engagement_events
from summary
full outer join engagement
    on summary.activity_date = engagement.activity_date
        and summary.org_id = engagement.org_id
where engagement.events is null
    or summary.events is null
    or summary.events <> engagement.events
    or abs(summary.share - 100) > 0.001
