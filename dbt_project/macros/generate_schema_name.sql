{#- Models land in the schema they name (staging, intermediate, marts), not "<target>_<schema>":
    the schemas are part of the warehouse contract (SPEC §5). -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name | trim if custom_schema_name is not none else target.schema }}
{%- endmacro %}
