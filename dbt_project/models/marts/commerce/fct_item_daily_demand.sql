{{
    config(
        materialized='incremental',
        incremental_strategy='replace_window',
        window_column='demand_date',
        tags=['daily'],
    )
}}

{#- Completed demand and end-of-day stock per item and day, zero-filled for every active item (and
    any other item with demand or stock that day): the input of demand forecasting. -#}

with

order_lines as (

    select * from {{ ref('stg_product__order_lines') }}
    where order_date between {{ window_start() }} and {{ window_end() }}
        and status = 'completed'

),

snapshots as (

    select * from {{ ref('stg_product__inventory_snapshots') }}
    where snapshot_date between {{ window_start() }} and {{ window_end() }}

),

active_items as (

    select item_id from {{ ref('stg_product__items') }}
    where is_active

),

{% if is_full_window() -%}
loaded_range as (

    {{ loaded_range([('order_lines', 'order_date'), ('snapshots', 'snapshot_date')]) }}

),

dates as (

    select date_day as demand_date
    from ({{ date_series('(select first_date from loaded_range)', '(select last_date from loaded_range)') }}) as series

),
{%- else -%}
dates as (

    select date_day as demand_date
    from ({{ date_series(window_start(), window_end()) }}) as series

),
{%- endif %}

demand as (

    select
        order_date as demand_date,
        item_id,
        sum(quantity) as units,
        sum(line_amount) as revenue

    from order_lines
    group by order_date, item_id

),

item_days as (

    select
        dates.demand_date,
        active_items.item_id
    from dates
    cross join active_items

    union

    select
        demand_date,
        item_id
    from demand

    union

    select
        snapshot_date,
        item_id
    from snapshots

),

final as (

    select
        item_days.demand_date,
        item_days.item_id,
        cast(coalesce(demand.units, 0) as {{ dbt.type_bigint() }}) as units,
        {{ money('coalesce(demand.revenue, 0)') }} as revenue,
        snapshots.on_hand,
        snapshots.on_hand = 0 as stockout

    from item_days
    left join demand
        on item_days.demand_date = demand.demand_date
            and item_days.item_id = demand.item_id
    left join snapshots
        on item_days.demand_date = snapshots.snapshot_date
            and item_days.item_id = snapshots.item_id

)

select * from final
