{#- The partition window Dagster is materializing, as SQL date literals. -#}
{% macro window_start() -%}
    cast('{{ window_var("min_date") }}' as date)
{%- endmacro %}

{% macro window_end() -%}
    cast('{{ window_var("max_date") }}' as date)
{%- endmacro %}

{#-
  The window is the vars min_date / max_date: `dbt build --vars '{min_date: ..., max_date: ...}'`.
  Dagster hands them over in the environment instead (ANALYTICS_DBT_MIN_DATE / ANALYTICS_DBT_MAX_DATE,
  see analytics_pipeline/resources/dbt.py): command-line vars are part of dbt's parse state, so a new
  window every day would make every run re-parse the whole project. The environment is read only while
  executing, which keeps it out of the parse state as well. Vars given on the command line win.
-#}
{% macro window_var(name) -%}
    {%- set unbounded = {"min_date": "1900-01-01", "max_date": "2999-12-31"} -%}
    {%- set value = var(name) -%}
    {%- if execute and value == unbounded[name] -%}
        {%- set value = env_var("ANALYTICS_DBT_" ~ name | upper, "") or value -%}
    {%- endif -%}
    {{ return(value) }}
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
    {{ return(window_var("min_date") == "1900-01-01" and window_var("max_date") == "2999-12-31") }}
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
