{#- Realised accuracy of every past forecast vintage, once the forecast days' demand is loaded: by
    item, model and horizon bucket (days after the as-of date). A full rebuild: each new day of
    demand scores up to 28 earlier vintages at once. -#}

with

forecasts as (

    {{ demand_forecasts() }}

),

demand as (

    select
        demand_date,
        item_id,
        units
    from {{ ref('fct_item_daily_demand') }}

),

scored as (

    select
        forecasts.item_id,
        forecasts.model,
        forecasts.as_of_date,
        {{ dbt.datediff('forecasts.as_of_date', 'forecasts.forecast_date', 'day') }} as horizon_days,
        cast(demand.units as {{ type_double() }}) as actual,
        forecasts.yhat,
        forecasts.yhat - demand.units as error,
        abs(forecasts.yhat - demand.units) as abs_error,
        cast(case when demand.units between forecasts.yhat_lo_80 and forecasts.yhat_hi_80 then 1 else 0 end as {{ type_double() }}) as inside_80,
        cast(case when demand.units between forecasts.yhat_lo_95 and forecasts.yhat_hi_95 then 1 else 0 end as {{ type_double() }}) as inside_95

    from forecasts
    inner join demand
        on forecasts.item_id = demand.item_id
            and forecasts.forecast_date = demand.demand_date

),

bucketed as (

    select
        *,
        case
            when horizon_days <= 7 then '01-07'
            when horizon_days <= 14 then '08-14'
            else '15-28'
        end as horizon_bucket

    from scored

),

final as (

    select
        item_id,
        model,
        horizon_bucket,
        count(*) as forecasts,
        count(distinct as_of_date) as vintages,
        min(as_of_date) as first_as_of_date,
        max(as_of_date) as last_as_of_date,
        sum(actual) as actual_units,
        sum(yhat) as forecast_units,
        avg(abs_error) as mae,
        sqrt(avg(error * error)) as rmse,
        avg(error) as bias,
        sum(abs_error) / nullif(sum(actual), 0) as wape,
        avg(case when abs(yhat) + abs(actual) = 0 then 0 else abs_error / (abs(yhat) + abs(actual)) end) as smape,
        avg(inside_80) as coverage_80,
        avg(inside_95) as coverage_95

    from bucketed
    group by item_id, model, horizon_bucket

)

select * from final
