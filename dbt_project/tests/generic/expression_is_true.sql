{#- Every row satisfies `expression` (a metric invariant); rows where it is false are failures. -#}
{% test expression_is_true(model, expression, column_name=none) %}
    select *
    from {{ model }}
    where not ({{ expression }})
{% endtest %}
