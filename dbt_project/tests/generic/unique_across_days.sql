{#-
  `column_name` is unique over every day of the table, checked from the days of the partition window:
  each value written in the window is counted among all days, so a value the window repeats from an
  earlier (or later) day fails too, while the days outside the window are not grouped. Without a
  window (a plain `dbt build`) it checks every value.
  The count is a correlated subquery so that PostgreSQL looks each value up in its index on the
  column (raw.activity_events.event_id) whatever its statistics say; DuckDB decorrelates it into
  one join.
-#}
{% test unique_across_days(model, column_name, date_column) %}
    with window_values as (

        select distinct {{ column_name }} as value
        from {{ model }}
        where {{ date_column }} between {{ window_start() }} and {{ window_end() }}

    ),

    counted as (

        select
            value,
            (select count(*) from {{ model }} as every_day where every_day.{{ column_name }} = window_values.value)
                as n_records
        from window_values

    )

    select value as unique_field, n_records
    from counted
    where n_records > 1
{% endtest %}
