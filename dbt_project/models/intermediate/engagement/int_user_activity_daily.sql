{{
    config(
        materialized='incremental',
        incremental_strategy='replace_window',
        window_column='activity_date',
        tags=['daily'],
        indexes=[{'columns': ['user_id']}, {'columns': ['activity_date']}] if target.type == 'postgres' else [],
    )
}}

{#- One row per user, org and day with at least one accepted event: the reusable rollup that
    first-seen users, rolling windows and retention cohorts are computed from. -#}

with

events as (

    select * from {{ ref('stg_product__activity_events') }}
    where activity_date between {{ window_start() }} and {{ window_end() }}

),

user_days as (

    select
        activity_date,
        org_id,
        user_id,
        count(*) as events,
        count(distinct session_id) as sessions,
        min(occurred_at) as first_event_at,
        max(occurred_at) as last_event_at

    from events
    group by activity_date, org_id, user_id

)

select * from user_days
