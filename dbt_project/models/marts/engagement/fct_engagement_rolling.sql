{{
    config(
        materialized='incremental',
        incremental_strategy='replace_window',
        window_column='activity_date',
        tags=['daily'],
    )
}}

{#-
  Daily, weekly and monthly active users per school and for the whole platform (org_id '__all__',
  distinct users across schools, not a sum). A day's window looks back 30 days, so loading a window
  also recomputes the 29 days after it, up to the last loaded day.
-#}

with

user_days as (

    select * from {{ ref('int_user_activity_daily') }}

),

bounds as (

    select
        greatest({{ window_start() }}, min(activity_date)) as first_date,
        least({{ add_days(window_end(), 29) }}, coalesce(max(activity_date), {{ window_end() }})) as last_date

    from user_days

),

dates as (

    select series.date_day as activity_date
    from ({{ date_series('(select first_date from bounds)', '(select last_date from bounds)') }}) as series

),

trailing_activity as (

    select
        dates.activity_date,
        user_days.org_id,
        user_days.user_id,
        user_days.activity_date as active_on

    from dates
    inner join user_days
        on user_days.activity_date between {{ add_days('dates.activity_date', -29) }} and dates.activity_date

),

per_org as (

    select
        activity_date,
        org_id,
        count(distinct case when active_on = activity_date then user_id end) as dau,
        count(distinct case when active_on > {{ add_days('activity_date', -7) }} then user_id end) as wau,
        count(distinct user_id) as mau

    from trailing_activity
    group by activity_date, org_id

),

platform as (

    select
        activity_date,
        '__all__' as org_id,
        count(distinct case when active_on = activity_date then user_id end) as dau,
        count(distinct case when active_on > {{ add_days('activity_date', -7) }} then user_id end) as wau,
        count(distinct user_id) as mau

    from trailing_activity
    group by activity_date

),

unioned as (

    select * from per_org
    union all
    select * from platform

),

final as (

    select
        activity_date,
        org_id,
        dau,
        wau,
        mau,
        case when mau > 0 then cast(dau as {{ type_double() }}) / mau end as stickiness

    from unioned

)

select * from final
