{{
    config(
        materialized='incremental',
        incremental_strategy='replace_window',
        window_column='order_date',
        tags=['daily'],
        indexes=[{'columns': ['org_id']}, {'columns': ['order_date']}] if target.type == 'postgres' else [],
    )
}}

{#- One row per school and day with at least one completed order line: the history that first orders
    and 30-day customer windows are computed from. Cancelled and refunded lines count nowhere here. -#}

with

order_lines as (

    select * from {{ ref('stg_product__order_lines') }}
    where order_date between {{ window_start() }} and {{ window_end() }}
        and status = 'completed'

),

org_days as (

    select
        order_date,
        org_id,
        count(distinct order_id) as completed_orders,
        sum(line_amount) as revenue

    from order_lines
    group by order_date, org_id

)

select * from org_days
