{#- 8-byte floating point on every adapter (dbt.type_float() is a 4-byte REAL on DuckDB, so ratios
    would differ between the warehouses in the seventh digit). -#}
{% macro type_double() -%}
    double precision
{%- endmacro %}

{#- Money: exact decimals with 4 places on every adapter. -#}
{% macro money(expression) -%}
    cast({{ expression }} as numeric(18,4))
{%- endmacro %}
