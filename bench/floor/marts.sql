-- The floor: the engagement and KPI marts of SPEC §5 computed in full, in plain SQL, from the raw
-- tables of a plain bulk load (load_duckdb.sql / load_postgres.sql). One statement per mart and no
-- incremental logic, tests, previews or metadata: the least work that yields the same numbers. The
-- same text runs on DuckDB and PostgreSQL. Tables land in the schema `floor`.

drop schema if exists floor cascade;
create schema floor;

create table floor.user_days as
select _partition_date as activity_date, org_id, user_id, count(*) as events
from raw.activity_events
group by _partition_date, org_id, user_id;

create table floor.fct_daily_engagement as
with first_seen as (
    select user_id, min(activity_date) as first_activity_date
    from floor.user_days
    group by user_id
),
sessions as (
    select _partition_date as activity_date, org_id, count(distinct session_id) as sessions
    from raw.activity_events
    group by _partition_date, org_id
),
per_org_day as (
    select
        user_days.activity_date,
        user_days.org_id,
        count(*) as active_users,
        sum(case when first_seen.first_activity_date = user_days.activity_date then 1 else 0 end) as new_users,
        sum(user_days.events) as events
    from floor.user_days
    inner join first_seen on first_seen.user_id = user_days.user_id
    group by user_days.activity_date, user_days.org_id
)
select
    per_org_day.activity_date,
    per_org_day.org_id,
    per_org_day.active_users,
    per_org_day.new_users,
    per_org_day.active_users - per_org_day.new_users as returning_users,
    per_org_day.events,
    coalesce(sessions.sessions, 0) as sessions,
    cast(per_org_day.events as double precision) / per_org_day.active_users as events_per_active_user
from per_org_day
left join sessions
    on sessions.activity_date = per_org_day.activity_date and sessions.org_id = per_org_day.org_id;

create table floor.fct_engagement_rolling as
with dates as (
    select cast(series.day_ts as date) as activity_date
    from generate_series(
        cast((select min(activity_date) from floor.user_days) as timestamp),
        cast((select max(activity_date) from floor.user_days) as timestamp),
        interval '1 day'
    ) as series(day_ts)
),
trailing_activity as (
    select dates.activity_date, user_days.org_id, user_days.user_id, user_days.activity_date as active_on
    from dates
    inner join floor.user_days
        on user_days.activity_date between dates.activity_date - 29 and dates.activity_date
),
counts as (
    select
        activity_date,
        org_id,
        count(distinct user_id) filter (where active_on = activity_date) as dau,
        count(distinct user_id) filter (where active_on > activity_date - 7) as wau,
        count(distinct user_id) as mau
    from trailing_activity
    group by activity_date, org_id
    union all
    select
        activity_date,
        '__all__' as org_id,
        count(distinct user_id) filter (where active_on = activity_date) as dau,
        count(distinct user_id) filter (where active_on > activity_date - 7) as wau,
        count(distinct user_id) as mau
    from trailing_activity
    group by activity_date
)
select *, case when mau > 0 then cast(dau as double precision) / mau end as stickiness
from counts;

create table floor.fct_activity_summary as
select
    _partition_date as activity_date,
    org_id,
    activity_type,
    count(*) as events,
    count(distinct user_id) as users,
    100.0 * count(*) / sum(count(*)) over (partition by _partition_date, org_id) as share_of_events
from raw.activity_events
group by _partition_date, org_id, activity_type;

create table floor.fct_hourly_usage as
select date_trunc('hour', occurred_at) as activity_hour, activity_type, count(*) as events, count(distinct user_id) as users
from raw.activity_events
group by date_trunc('hour', occurred_at), activity_type;

create table floor.fct_kpi_daily as
with lines as (
    select
        _partition_date as order_date, org_id, order_id, status, quantity,
        quantity * unit_price as amount, quantity * unit_cost as cost
    from raw.order_lines
    where status in ('completed', 'refunded')
),
daily_orders as (
    select
        order_date,
        sum(case when status = 'completed' then amount else 0 end) as revenue,
        sum(case when status = 'refunded' then amount else 0 end) as refunds,
        sum(case when status = 'completed' then cost else 0 end) as cogs,
        count(distinct case when status = 'completed' then order_id end) as orders,
        sum(case when status = 'completed' then quantity else 0 end) as units
    from lines
    group by order_date
),
org_days as (
    select order_date, org_id, count(distinct order_id) as orders
    from lines
    where status = 'completed'
    group by order_date, org_id
),
inventory as (
    select
        snapshots._partition_date as snapshot_date,
        count(*) as snapshot_items,
        sum(case when snapshots.on_hand = 0 then 1 else 0 end) as stockout_items,
        sum(snapshots.on_hand * items.unit_cost) as inventory_value
    from raw.inventory_snapshots as snapshots
    left join raw.items as items on items.item_id = snapshots.item_id
    group by snapshots._partition_date
),
bounds as (
    select min(first_date) as first_date, max(last_date) as last_date
    from (
        select min(order_date) as first_date, max(order_date) as last_date from daily_orders
        union all
        select min(snapshot_date), max(snapshot_date) from inventory
    ) as ranges
),
dates as (
    select cast(series.day_ts as date) as kpi_date
    from generate_series(
        cast((select first_date from bounds) as timestamp),
        cast((select last_date from bounds) as timestamp),
        interval '1 day'
    ) as series(day_ts)
),
new_customers as (
    select first_order_date as kpi_date, count(*) as new_customers
    from (select org_id, min(order_date) as first_order_date from org_days group by org_id) as firsts
    group by first_order_date
),
customers_30d as (
    select
        kpi_date,
        count(*) as active_customers_30d,
        sum(case when orders >= 2 then 1 else 0 end) as repeat_customers_30d
    from (
        select dates.kpi_date, org_days.org_id, sum(org_days.orders) as orders
        from dates
        inner join org_days on org_days.order_date between dates.kpi_date - 29 and dates.kpi_date
        group by dates.kpi_date, org_days.org_id
    ) as windows
    group by kpi_date
),
trailing_30d as (
    select
        dates.kpi_date,
        (select sum(cogs) from daily_orders
         where order_date between dates.kpi_date - 29 and dates.kpi_date) as cogs_30d,
        (select avg(inventory_value) from inventory
         where snapshot_date between dates.kpi_date - 29 and dates.kpi_date) as inventory_value_30d
    from dates
)
select
    dates.kpi_date,
    coalesce(orders.revenue, 0) as revenue,
    coalesce(orders.refunds, 0) as refunds,
    coalesce(orders.revenue, 0) - coalesce(orders.refunds, 0) as net_revenue,
    coalesce(orders.cogs, 0) as cogs,
    coalesce(orders.revenue, 0) - coalesce(orders.cogs, 0) as gross_profit,
    case when orders.revenue > 0
        then cast(orders.revenue - orders.cogs as double precision) * 100 / cast(orders.revenue as double precision)
    end as gross_margin_pct,
    coalesce(orders.orders, 0) as orders,
    coalesce(orders.units, 0) as units,
    case when orders.orders > 0 then orders.revenue / orders.orders end as avg_order_value,
    coalesce(new_customers.new_customers, 0) as new_customers,
    coalesce(customers_30d.active_customers_30d, 0) as active_customers_30d,
    case when customers_30d.active_customers_30d > 0
        then cast(customers_30d.repeat_customers_30d as double precision) / customers_30d.active_customers_30d
    end as repeat_customer_rate_30d,
    inventory.stockout_items,
    cast(inventory.stockout_items as double precision) / inventory.snapshot_items as stockout_rate,
    inventory.inventory_value,
    case when trailing_30d.inventory_value_30d > 0
        then cast(coalesce(trailing_30d.cogs_30d, 0) as double precision)
            / cast(trailing_30d.inventory_value_30d as double precision)
    end as inventory_turnover_30d
from dates
left join daily_orders as orders on orders.order_date = dates.kpi_date
left join inventory on inventory.snapshot_date = dates.kpi_date
left join new_customers on new_customers.kpi_date = dates.kpi_date
left join customers_30d on customers_30d.kpi_date = dates.kpi_date
left join trailing_30d on trailing_30d.kpi_date = dates.kpi_date;
