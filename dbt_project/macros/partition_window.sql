{#- The partition window Dagster is materializing, as SQL date literals. -#}
{% macro window_start() -%}
    cast('{{ var("min_date") }}' as date)
{%- endmacro %}

{% macro window_end() -%}
    cast('{{ var("max_date") }}' as date)
{%- endmacro %}

{#- One row per date from start_date to end_date (SQL expressions), column date_day. -#}
{% macro date_series(start_date, end_date) -%}
    select cast(series.day_ts as date) as date_day
    from generate_series(
        cast({{ start_date }} as timestamp), cast({{ end_date }} as timestamp), interval '1 day'
    ) as series(day_ts)
{%- endmacro %}

{#- Shift a date by a whole number of days and keep it a date (dbt.dateadd returns a timestamp). -#}
{% macro add_days(date_expr, days) -%}
    cast({{ dbt.dateadd('day', days, date_expr) }} as date)
{%- endmacro %}

{#- True when no window was passed (a plain `dbt build`): models then cover every loaded day. -#}
{% macro is_full_window() -%}
    {{ return(var("min_date") == "1900-01-01" and var("max_date") == "2999-12-31") }}
{%- endmacro %}

{#- First and last date present in the given (relation, date column) pairs: the loaded range. -#}
{% macro loaded_range(sources) -%}
    select min(first_date) as first_date, max(last_date) as last_date
    from (
        {% for relation, column in sources -%}
        select min({{ column }}) as first_date, max({{ column }}) as last_date from {{ relation }}
        {% if not loop.last %}union all{% endif %}
        {% endfor -%}
    ) as dataset_ranges
{%- endmacro %}
