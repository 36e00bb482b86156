{#- What to reorder now, per item, from the latest forecast vintage and the stock on its as-of date.

    Demand over the lead time is the sum of the daily point forecasts; its uncertainty adds the
    daily variances read off the 95% intervals (half-width / 1.96), assuming independent days.
    Safety stock covers a 95% cycle service level (z = 1.645). An item needs an order when stock on
    hand plus on order falls short of lead-time demand plus safety stock.
    Unknown stock stays unknown: an item without any snapshot on or before the as-of date has no
    on hand, cover, stockout date or reorder quantity, reorder_now is null, and stock_status says
    'no snapshot' ('stale' when the latest snapshot is older than the as-of date, else 'current'). -#}

{%- set lead_time_days = env_var('ANALYTICS_REORDER_LEAD_TIME_DAYS', '14') | int %}
{%- if lead_time_days < 1 or lead_time_days > 28 %}
    {{ exceptions.raise_compiler_error("ANALYTICS_REORDER_LEAD_TIME_DAYS must be between 1 and 28 (the forecast horizon); it is " ~ lead_time_days) }}
{%- endif %}

with

forecasts as (

    {{ demand_forecasts() }}

),

snapshots as (

    select * from {{ ref('stg_product__inventory_snapshots') }}

),

items as (

    select * from {{ ref('stg_product__items') }}

),

latest_vintage as (

    select max(as_of_date) as as_of_date from forecasts

),

vintage as (

    select forecasts.*
    from forecasts
    inner join latest_vintage
        on forecasts.as_of_date = latest_vintage.as_of_date

),

stock_ranked as (

    select
        snapshots.item_id,
        snapshots.snapshot_date,
        snapshots.on_hand,
        snapshots.on_order,
        row_number() over (partition by snapshots.item_id order by snapshots.snapshot_date desc) as recency

    from snapshots
    inner join latest_vintage
        on snapshots.snapshot_date <= latest_vintage.as_of_date

),

stock as (

    select
        item_id,
        snapshot_date,
        on_hand,
        on_order
    from stock_ranked
    where recency = 1

),

lead_time_demand as (

    select
        item_id,
        min(as_of_date) as as_of_date,
        min(model) as model,
        sum(case when {{ dbt.datediff('as_of_date', 'forecast_date', 'day') }} <= {{ lead_time_days }} then yhat else 0 end) as forecast_demand_lead_time,
        sum(case when {{ dbt.datediff('as_of_date', 'forecast_date', 'day') }} <= {{ lead_time_days }}
                then ((yhat_hi_95 - yhat) / 1.96) * ((yhat_hi_95 - yhat) / 1.96)
            else 0
        end) as lead_time_variance,
        avg(yhat) as forecast_daily_demand

    from vintage
    group by item_id

),

cumulative as (

    select
        item_id,
        forecast_date,
        sum(yhat) over (partition by item_id order by forecast_date rows between unbounded preceding and current row) as cumulative_demand

    from vintage

),

projected_stockouts as (

    select
        cumulative.item_id,
        min(cumulative.forecast_date) as projected_stockout_date
    from cumulative
    inner join stock
        on cumulative.item_id = stock.item_id
    where cumulative.cumulative_demand > stock.on_hand
    group by cumulative.item_id

),

planned as (

    select
        lead_time_demand.item_id,
        lead_time_demand.as_of_date,
        lead_time_demand.model,
        stock.snapshot_date as stock_date,
        case
            when stock.snapshot_date is null then 'no snapshot'
            when stock.snapshot_date < lead_time_demand.as_of_date then 'stale'
            else 'current'
        end as stock_status,
        stock.on_hand,
        -- on_order is optional in a snapshot: absent means nothing on order; no snapshot means unknown
        case when stock.snapshot_date is not null then coalesce(stock.on_order, 0) end as on_order,
        {{ lead_time_days }} as lead_time_days,
        lead_time_demand.forecast_demand_lead_time,
        lead_time_demand.forecast_daily_demand,
        cast(1.645 as {{ type_double() }}) * sqrt(lead_time_demand.lead_time_variance) as safety_stock,
        projected_stockouts.projected_stockout_date

    from lead_time_demand
    left join stock
        on lead_time_demand.item_id = stock.item_id
    left join projected_stockouts
        on lead_time_demand.item_id = projected_stockouts.item_id

),

final as (

    select
        planned.item_id,
        items.item_name,
        items.category,
        planned.as_of_date,
        planned.model,
        planned.stock_date,
        planned.stock_status,
        planned.on_hand,
        planned.on_order,
        planned.lead_time_days,
        planned.forecast_demand_lead_time,
        planned.forecast_daily_demand,
        case when planned.forecast_daily_demand > 0 then planned.on_hand / planned.forecast_daily_demand end as days_of_cover,
        planned.projected_stockout_date,
        planned.safety_stock,
        planned.forecast_demand_lead_time + planned.safety_stock as reorder_level,
        -- greatest() skips nulls: without stock it would say 0, so unknown stock is handled first
        case when planned.on_hand is not null then cast(
                    greatest(ceil(planned.forecast_demand_lead_time + planned.safety_stock - planned.on_hand - planned.on_order), 0)
                    as {{ dbt.type_bigint() }}
                )
        end as suggested_reorder_qty,
        planned.on_hand + planned.on_order < planned.forecast_demand_lead_time + planned.safety_stock as reorder_now

    from planned
    left join items
        on planned.item_id = items.item_id

)

select * from final
