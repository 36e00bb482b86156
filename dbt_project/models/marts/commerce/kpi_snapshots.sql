{{
    config(
        materialized='table',
        tags=['daily'],
    )
}}

{#-
  Every KPI of fct_kpi_daily in long format, per day, ISO week (Monday) and month: value, previous
  period's value, change, trend and status against the thresholds of the kpi_thresholds seed.
  Flows are summed over the period, ratios recomputed from the summed parts, stock-like values
  taken on the period's last day, stockout rate averaged over the days with a snapshot.
  A KPI without a value (no snapshot, no revenue for a margin) has status no_data and no trend.
  A period is complete only when every one of its days is loaded (the first and the last alike).
  Rebuilt from the daily KPIs in full (a few rows per day), so it is right for any load order.
-#}

{%- set summed = ['revenue', 'refunds', 'net_revenue', 'cogs', 'gross_profit', 'orders', 'units', 'new_customers'] -%}
{%- set last_day = ['active_customers_30d', 'repeat_customer_rate_30d', 'inventory_value', 'inventory_turnover_30d'] -%}
{%- set kpis = summed + last_day + ['gross_margin_pct', 'avg_order_value', 'stockout_rate'] -%}

with

daily as (

    select * from {{ ref('fct_kpi_daily') }}

),

thresholds as (

    select * from {{ ref('kpi_thresholds') }}

),

by_period as (

    {% for grain in ['day', 'week', 'month'] %}
    select
        '{{ grain }}' as grain,
        cast({{ dbt.date_trunc(grain, 'kpi_date') }} as date) as period_start,
        daily.*,
        row_number() over (
            partition by cast({{ dbt.date_trunc(grain, 'kpi_date') }} as date) order by kpi_date desc
        ) as days_from_period_end
    from daily
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

periods as (

    select
        grain,
        period_start,
        max(kpi_date) as period_last_date,
        count(*) as loaded_days,
        {% for kpi in summed -%}
        sum({{ kpi }}) as {{ kpi }},
        {% endfor -%}
        {% for kpi in last_day -%}
        max(case when days_from_period_end = 1 then {{ kpi }} end) as {{ kpi }},
        {% endfor -%}
        avg(stockout_rate) as stockout_rate

    from by_period
    group by grain, period_start

),

with_ratios as (

    select
        periods.*,
        case when revenue > 0 then cast(gross_profit as {{ type_double() }}) * 100 / revenue end as gross_margin_pct,
        case when orders > 0 then cast(revenue as {{ type_double() }}) / orders end as avg_order_value

    from periods

),

long_format as (

    {% for kpi in kpis %}
    select
        '{{ kpi }}' as kpi_name,
        grain,
        period_start,
        period_last_date,
        loaded_days,
        cast({{ kpi }} as {{ type_double() }}) as value
    from with_ratios
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

compared as (

    select
        long_format.*,
        lag(value) over (partition by kpi_name, grain order by period_start) as previous_value

    from long_format

),

final as (

    select
        compared.kpi_name,
        compared.grain,
        compared.period_start,
        compared.value,
        compared.previous_value,
        case when compared.previous_value <> 0
                then (compared.value - compared.previous_value) * 100 / abs(compared.previous_value)
        end as change_pct,
        case
            when compared.value is null then null
            when compared.previous_value is null then 'flat'
            when compared.previous_value = 0 and compared.value > 0 then 'up'
            when compared.previous_value = 0 and compared.value < 0 then 'down'
            when compared.previous_value = 0 then 'flat'
            when (compared.value - compared.previous_value) * 100 / abs(compared.previous_value)
                > coalesce(thresholds.flat_band_pct, 1) then 'up'
            when (compared.value - compared.previous_value) * 100 / abs(compared.previous_value)
                < -coalesce(thresholds.flat_band_pct, 1) then 'down'
            else 'flat'
        end as trend,
        case
            when compared.value is null then 'no_data'
            when thresholds.kpi_name is null then 'ok'
            when thresholds.direction = 'higher_is_better' and compared.value < thresholds.breach_threshold then 'breach'
            when thresholds.direction = 'higher_is_better' and compared.value < thresholds.warn_threshold then 'warn'
            when thresholds.direction = 'lower_is_better' and compared.value > thresholds.breach_threshold then 'breach'
            when thresholds.direction = 'lower_is_better' and compared.value > thresholds.warn_threshold then 'warn'
            else 'ok'
        end as status,
        thresholds.warn_threshold,
        thresholds.breach_threshold,
        compared.period_last_date,
        compared.loaded_days,
        compared.loaded_days = case compared.grain
            when 'day' then 1
            when 'week' then 7
            else {{ dbt.datediff('compared.period_start', dbt.dateadd('month', 1, 'compared.period_start'), 'day') }}
        end as is_complete_period

    from compared
    left join thresholds
        on compared.kpi_name = thresholds.kpi_name
            and compared.grain = thresholds.grain

)

select * from final
