{#- 8-byte floating point on every adapter (dbt.type_float() is a 4-byte REAL on DuckDB, so ratios
    would differ between the warehouses in the seventh digit). -#}
{% macro type_double() -%}
    double precision
{%- endmacro %}

{#- Money: exact decimals with 4 places on every adapter. 38 digits, not the 18 of a raw price: a sum
    over a day of lines at the ingestion bound (quantity and price up to 10^9 each, so 10^18 a line)
    cannot overflow it. -#}
{% macro money(expression) -%}
    cast({{ expression }} as numeric(38,4))
{%- endmacro %}
