{{
    config(
        materialized='incremental',
        incremental_strategy='replace_window',
        window_column='activity_date',
        tags=['daily'],
    )
}}

{#- Activity mix per school and day. Types outside the catalogue are kept and counted. -#}

with

events as (

    select * from {{ ref('stg_product__activity_events') }}
    where activity_date between {{ window_start() }} and {{ window_end() }}

),

per_type as (

    select
        activity_date,
        org_id,
        activity_type,
        bool_or(is_catalogued_activity) as is_catalogued_activity,
        count(*) as events,
        count(distinct user_id) as users

    from events
    group by activity_date, org_id, activity_type

),

final as (

    select
        activity_date,
        org_id,
        activity_type,
        is_catalogued_activity,
        events,
        users,
        100.0 * cast(events as {{ type_double() }})
        / sum(events) over (partition by activity_date, org_id) as share_of_events

    from per_type

)

select * from final
