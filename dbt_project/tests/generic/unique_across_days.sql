{#-
  `column_name` is unique over every day of the table, checked from the days of the partition window:
  each value written in the window is looked up among all days, so a value the window repeats from
  an earlier (or later) day fails too, while the days outside the window are not grouped. Without a
  window (a plain `dbt build`) it is dbt's `unique`.
-#}
{% test unique_across_days(model, column_name, date_column) %}
    with window_values as (

        select {{ column_name }} as value
        from {{ model }}
        where {{ date_column }} between {{ window_start() }} and {{ window_end() }}

    )

    select {{ column_name }} as unique_field, count(*) as n_records
    from {{ model }}
    where {{ column_name }} in (select value from window_values)
    group by {{ column_name }}
    having count(*) > 1
{% endtest %}
