{#-
  Weekly retention cohorts: users grouped by the week (Monday) of their first accepted event ever,
  and the share of them active again 0, 1, 2, ... weeks later. Per school (the school of the
  user's first event) and for the platform ('__all__'). Rebuilt in full from the daily rollup, so
  it is right for any order in which days were loaded.
-#}

with

user_days as (

    select * from {{ ref('int_user_activity_daily') }}

),

first_seen as (

    select
        user_id,
        min(activity_date) as first_activity_date

    from user_days
    group by user_id

),

cohort_membership as (

    select
        first_seen.user_id,
        min(user_days.org_id) as org_id,
        cast({{ dbt.date_trunc('week', 'first_seen.first_activity_date') }} as date) as cohort_week

    from first_seen
    inner join user_days
        on first_seen.user_id = user_days.user_id
            and first_seen.first_activity_date = user_days.activity_date
    group by first_seen.user_id, first_seen.first_activity_date

),

active_weeks as (

    select distinct
        user_id,
        cast({{ dbt.date_trunc('week', 'activity_date') }} as date) as active_week

    from user_days

),

cohort_activity as (

    select
        cohort_membership.cohort_week,
        cohort_membership.org_id,
        cohort_membership.user_id,
        cast({{ dbt.datediff('cohort_membership.cohort_week', 'active_weeks.active_week', 'day') }} / 7 as integer)
            as weeks_since_first_activity

    from cohort_membership
    inner join active_weeks on cohort_membership.user_id = active_weeks.user_id

),

per_org as (

    select
        cohort_week,
        org_id,
        weeks_since_first_activity,
        count(distinct user_id) as active_users
    from cohort_activity
    group by cohort_week, org_id, weeks_since_first_activity

),

platform as (

    select
        cohort_week,
        '__all__' as org_id,
        weeks_since_first_activity,
        count(distinct user_id) as active_users
    from cohort_activity
    group by cohort_week, weeks_since_first_activity

),

unioned as (

    select * from per_org
    union all
    select * from platform

),

cohort_sizes as (

    select
        cohort_week,
        org_id,
        active_users as cohort_users
    from unioned
    where weeks_since_first_activity = 0

),

final as (

    select
        unioned.cohort_week,
        unioned.org_id,
        unioned.weeks_since_first_activity,
        cohort_sizes.cohort_users,
        unioned.active_users as retained_users,
        cast(unioned.active_users as {{ type_double() }}) / cohort_sizes.cohort_users as retention_rate

    from unioned
    inner join cohort_sizes
        on unioned.cohort_week = cohort_sizes.cohort_week
            and unioned.org_id = cohort_sizes.org_id

)

select * from final
