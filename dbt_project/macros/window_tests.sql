{#-
  dbt's `where` config for data tests, with two placeholders for the partition window being built:
  `__window_start__` and `__window_end__` (SQL dates, see partition_window.sql). A test of a table
  that keeps every day of history then checks only the days a run wrote, so a daily run's cost does
  not grow with the history; a plain `dbt build` (no window) still checks every day. A model whose
  window also rewrites later days tests `>= __window_start__`: every day the run may have written.
  This replaces dbt's own get_where_subquery (a root-project macro of the same name wins).
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- set where = where | replace('__window_start__', window_start())
                              | replace('__window_end__', window_end()) -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
