{{
    config(
        materialized='incremental',
        incremental_strategy='replace_window',
        window_column='activity_date',
        tags=['daily'],
    )
}}

{#- Events and distinct sessions per school and day: kept when raw events age out (retention), so
    marts recomputed for old days still have them. -#}

with

events as (

    select * from {{ ref('stg_product__activity_events') }}
    where activity_date between {{ window_start() }} and {{ window_end() }}

),

org_days as (

    select
        activity_date,
        org_id,
        count(*) as events,
        count(distinct session_id) as sessions

    from events
    group by activity_date, org_id

)

select * from org_days
