{#-
  Incremental strategy `replace_window`: the model's rows for the partition window, plus any later
  dates the model chose to recompute (rolling windows, first-seen users), replace what the table
  held for those dates. Re-running a window is idempotent, and dates whose rows vanished from the
  window are cleared too. Config: window_column = the model's date column.
  Without a window (a plain `dbt build`) only the dates the model produced are replaced: days whose
  raw data aged out (retention) keep their rows instead of being wiped by a full rebuild.
-#}
{% macro get_incremental_replace_window_sql(arg_dict) %}
    {%- set target = arg_dict["target_relation"] -%}
    {%- set source = arg_dict["temp_relation"] -%}
    {%- set column = config.require("window_column") -%}
    {%- set columns = get_quoted_csv(arg_dict["dest_columns"] | map(attribute="name")) -%}
    delete from {{ target }}
    where {{ column }} in (select distinct {{ column }} from {{ source }})
    {%- if not is_full_window() %}
       or {{ column }} between {{ window_start() }} and {{ window_end() }}
    {%- endif %};

    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ source }};
{% endmacro %}
