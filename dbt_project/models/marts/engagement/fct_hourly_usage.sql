{{
    config(
        materialized='incremental',
        incremental_strategy='replace_window',
        window_column='activity_date',
        tags=['daily'],
    )
}}

{#- Platform usage per UTC hour and activity type. -#}

with

events as (

    select * from {{ ref('stg_product__activity_events') }}
    where activity_date between {{ window_start() }} and {{ window_end() }}

),

final as (

    select
        activity_hour,
        activity_date,
        activity_type,
        count(*) as events,
        count(distinct user_id) as users

    from events
    group by activity_hour, activity_date, activity_type

)

select * from final
