{{
    config(
        materialized='incremental',
        incremental_strategy='replace_window',
        window_column='kpi_date',
        tags=['daily'],
    )
}}

{#-
  Financial, operational and customer KPIs per UTC day. Every day of the window gets a row, with
  zeros for order metrics on a day without orders and nulls for inventory metrics on a day without a
  snapshot. 30-day windows and first orders depend on history, so loading a window also recomputes
  the 29 days after it (up to the last loaded day) and the later day on which a school had its first
  completed order until this window showed an earlier one. Cancelled lines count nowhere.
-#}

with

order_lines as (

    select * from {{ ref('stg_product__order_lines') }}

),

snapshots as (

    select * from {{ ref('stg_product__inventory_snapshots') }}

),

items as (

    select * from {{ ref('stg_product__items') }}

),

org_days as (

    select * from {{ ref('int_org_orders_daily') }}

),

loaded_range as (

    {{ loaded_range([('order_lines', 'order_date'), ('snapshots', 'snapshot_date')]) }}

),

window_dates as (

    select date_day as kpi_date
    {% if is_full_window() -%}
    from ({{ date_series('(select first_date from loaded_range)', '(select last_date from loaded_range)') }}) as series
    {%- else -%}
    from ({{ date_series(window_start(), window_end()) }}) as series
    {%- endif %}

),

-- least() skips nulls on both warehouses: without loaded data there are no trailing days
trailing_dates as (

    select date_day as kpi_date
    from ({{ date_series(add_days(window_end(), 1),
                         'least(' ~ add_days(window_end(), 29) ~ ', coalesce((select last_date from loaded_range), ' ~ window_end() ~ '))') }}) as series

),

window_orgs as (

    select distinct org_id
    from org_days
    where order_date between {{ window_start() }} and {{ window_end() }}

),

window_org_history as (

    select
        org_days.org_id,
        min(case when org_days.order_date < {{ window_start() }} then org_days.order_date end) as ordered_before_window,
        min(case when org_days.order_date > {{ window_end() }} then org_days.order_date end) as next_order_after_window

    from org_days
    inner join window_orgs on org_days.org_id = window_orgs.org_id
    group by org_days.org_id

),

kpi_dates as (

    select kpi_date from window_dates
    union
    select kpi_date from trailing_dates
    union
    select next_order_after_window as kpi_date
    from window_org_history
    where ordered_before_window is null and next_order_after_window is not null

),

needed_range as (

    select
        {{ add_days('min(kpi_date)', -29) }} as from_date,
        max(kpi_date) as to_date
    from kpi_dates

),

daily_orders as (

    select
        order_date,
        sum(case when status = 'completed' then line_amount else 0 end) as revenue,
        sum(case when status = 'refunded' then line_amount else 0 end) as refunds,
        sum(case when status = 'completed' then line_cost else 0 end) as cogs,
        count(distinct case when status = 'completed' then order_id end) as orders,
        sum(case when status = 'completed' then quantity else 0 end) as units

    from order_lines
    where order_date between (select from_date from needed_range) and (select to_date from needed_range)
    group by order_date

),

daily_inventory as (

    select
        snapshots.snapshot_date,
        count(*) as snapshot_items,
        sum(case when snapshots.is_stockout then 1 else 0 end) as stockout_items,
        sum(snapshots.on_hand * items.unit_cost) as inventory_value

    from snapshots
    left join items on snapshots.item_id = items.item_id
    where snapshots.snapshot_date between (select from_date from needed_range) and (select to_date from needed_range)
    group by snapshots.snapshot_date

),

first_orders as (

    select
        org_id,
        min(order_date) as first_order_date
    from org_days
    where org_id in (
            select ordering.org_id from org_days as ordering
            where ordering.order_date in (select kpi_date from kpi_dates)
        )
    group by org_id

),

new_customers as (

    select
        first_order_date as kpi_date,
        count(*) as new_customers
    from first_orders
    group by first_order_date

),

customer_windows as (

    select
        kpi_dates.kpi_date,
        org_days.org_id,
        sum(org_days.completed_orders) as orders_30d

    from kpi_dates
    inner join org_days
        on org_days.order_date between {{ add_days('kpi_dates.kpi_date', -29) }} and kpi_dates.kpi_date
    group by kpi_dates.kpi_date, org_days.org_id

),

customers_30d as (

    select
        kpi_date,
        count(*) as active_customers_30d,
        sum(case when orders_30d >= 2 then 1 else 0 end) as repeat_customers_30d

    from customer_windows
    group by kpi_date

),

trailing_30d as (

    select
        kpi_dates.kpi_date,
        (
            select sum(daily_orders.cogs) from daily_orders
            where daily_orders.order_date between {{ add_days('kpi_dates.kpi_date', -29) }} and kpi_dates.kpi_date
        ) as cogs_30d,
        (
            select avg(daily_inventory.inventory_value) from daily_inventory
            where daily_inventory.snapshot_date between {{ add_days('kpi_dates.kpi_date', -29) }} and kpi_dates.kpi_date
        ) as avg_inventory_value_30d

    from kpi_dates

),

final as (

    select
        kpi_dates.kpi_date,
        {{ money('coalesce(daily_orders.revenue, 0)') }} as revenue,
        {{ money('coalesce(daily_orders.refunds, 0)') }} as refunds,
        {{ money('coalesce(daily_orders.revenue, 0) - coalesce(daily_orders.refunds, 0)') }} as net_revenue,
        {{ money('coalesce(daily_orders.cogs, 0)') }} as cogs,
        {{ money('coalesce(daily_orders.revenue, 0) - coalesce(daily_orders.cogs, 0)') }} as gross_profit,
        case when daily_orders.revenue > 0
                then cast(daily_orders.revenue - daily_orders.cogs as {{ type_double() }}) * 100 / daily_orders.revenue
        end as gross_margin_pct,
        cast(coalesce(daily_orders.orders, 0) as {{ dbt.type_bigint() }}) as orders,
        cast(coalesce(daily_orders.units, 0) as {{ dbt.type_bigint() }}) as units,
        -- a ratio, not an amount: kept to double precision (not the 4 places of money), computed
        -- as the same IEEE division on both warehouses
        case when daily_orders.orders > 0
                then cast(daily_orders.revenue as {{ type_double() }}) / daily_orders.orders
        end as avg_order_value,
        cast(coalesce(new_customers.new_customers, 0) as {{ dbt.type_bigint() }}) as new_customers,
        cast(coalesce(customers_30d.active_customers_30d, 0) as {{ dbt.type_bigint() }}) as active_customers_30d,
        case when customers_30d.active_customers_30d > 0
                then cast(customers_30d.repeat_customers_30d as {{ type_double() }}) / customers_30d.active_customers_30d
        end as repeat_customer_rate_30d,
        daily_inventory.snapshot_date is not null as has_inventory_snapshot,
        cast(daily_inventory.snapshot_items as {{ dbt.type_bigint() }}) as snapshot_items,
        cast(daily_inventory.stockout_items as {{ dbt.type_bigint() }}) as stockout_items,
        cast(daily_inventory.stockout_items as {{ type_double() }}) / daily_inventory.snapshot_items as stockout_rate,
        {{ money('daily_inventory.inventory_value') }} as inventory_value,
        case when trailing_30d.avg_inventory_value_30d > 0
                then cast(coalesce(trailing_30d.cogs_30d, 0) as {{ type_double() }})
                    / cast(trailing_30d.avg_inventory_value_30d as {{ type_double() }})
        end as inventory_turnover_30d

    from kpi_dates
    left join daily_orders on kpi_dates.kpi_date = daily_orders.order_date
    left join daily_inventory on kpi_dates.kpi_date = daily_inventory.snapshot_date
    left join new_customers on kpi_dates.kpi_date = new_customers.kpi_date
    left join customers_30d on kpi_dates.kpi_date = customers_30d.kpi_date
    left join trailing_30d on kpi_dates.kpi_date = trailing_30d.kpi_date

)

select * from final
