{{
    config(
        materialized='incremental',
        incremental_strategy='replace_window',
        window_column='activity_date',
        tags=['daily'],
    )
}}

{#-
  Daily engagement per school. `new_users` depends on history: a user is new on the day of their
  first accepted event ever. Loading a window can therefore change later days (a user counted new
  on day 20 is not new once day 5, where they already appear, is loaded). Those later dates are
  recomputed here too: for every user active in the window with no earlier activity, the first day
  they were active after the window.
-#}

with

user_days as (

    select * from {{ ref('int_user_activity_daily') }}

),

org_days as (

    select * from {{ ref('int_org_activity_daily') }}

),

window_users as (

    select distinct user_id
    from user_days
    where activity_date between {{ window_start() }} and {{ window_end() }}

),

window_user_history as (

    select
        user_days.user_id,
        min(case when user_days.activity_date < {{ window_start() }} then user_days.activity_date end)
            as last_seen_before_window,
        min(case when user_days.activity_date > {{ window_end() }} then user_days.activity_date end)
            as first_seen_after_window

    from user_days
    inner join window_users on user_days.user_id = window_users.user_id
    group by user_days.user_id

),

affected_dates as (

    select distinct activity_date
    from user_days
    where activity_date between {{ window_start() }} and {{ window_end() }}

    union

    select distinct first_seen_after_window as activity_date
    from window_user_history
    where last_seen_before_window is null
        and first_seen_after_window is not null

),

affected_user_days as (

    select user_days.*
    from user_days
    inner join affected_dates on user_days.activity_date = affected_dates.activity_date

),

first_seen as (

    select
        user_days.user_id,
        min(user_days.activity_date) as first_activity_date

    from user_days
    where user_days.user_id in (select user_id from affected_user_days)
    group by user_days.user_id

),

users_per_org_day as (

    select
        affected_user_days.activity_date,
        affected_user_days.org_id,
        count(*) as active_users,
        cast(sum(
            case when first_seen.first_activity_date = affected_user_days.activity_date then 1 else 0 end
        ) as {{ dbt.type_bigint() }}) as new_users,
        cast(sum(affected_user_days.events) as {{ dbt.type_bigint() }}) as events

    from affected_user_days
    inner join first_seen on affected_user_days.user_id = first_seen.user_id
    group by affected_user_days.activity_date, affected_user_days.org_id

),

sessions_per_org_day as (

    select
        org_days.activity_date,
        org_days.org_id,
        org_days.sessions
    from org_days
    inner join affected_dates on org_days.activity_date = affected_dates.activity_date

),

final as (

    select
        users_per_org_day.activity_date,
        users_per_org_day.org_id,
        users_per_org_day.active_users,
        users_per_org_day.new_users,
        users_per_org_day.active_users - users_per_org_day.new_users as returning_users,
        users_per_org_day.events,
        coalesce(sessions_per_org_day.sessions, 0) as sessions,
        cast(users_per_org_day.events as {{ type_double() }})
        / users_per_org_day.active_users as events_per_active_user

    from users_per_org_day
    left join sessions_per_org_day
        on users_per_org_day.activity_date = sessions_per_org_day.activity_date
            and users_per_org_day.org_id = sessions_per_org_day.org_id

)

select * from final
