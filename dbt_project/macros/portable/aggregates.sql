{#-
    The value of the row with the smallest `ordering` among the rows where `value` is not NULL
    (the first event of a session that names a device). DuckDB's min_by (arg_min) skips rows
    with a NULL value; Spark's returns the NULL of the first row, and skips only NULL orderings.
-#}
{% macro min_by_non_null(value, ordering) -%}
    {{ return(adapter.dispatch('min_by_non_null', 'segmenta')(value, ordering)) }}
{%- endmacro %}

{% macro default__min_by_non_null(value, ordering) -%}
    min_by({{ value }}, case when {{ value }} is not null then {{ ordering }} end)
{%- endmacro %}

{% macro duckdb__min_by_non_null(value, ordering) -%}
    min_by({{ value }}, {{ ordering }})
{%- endmacro %}

{#-
    last_value over the non-NULL values of `expression`; the window (`over (...)`) follows the
    call. DuckDB takes IGNORE NULLS inside the parentheses only, Spark 3.5 only after them or as
    last_value's second argument.
-#}
{% macro last_value_ignoring_nulls(expression) -%}
    {{ return(adapter.dispatch('last_value_ignoring_nulls', 'segmenta')(expression)) }}
{%- endmacro %}

{% macro default__last_value_ignoring_nulls(expression) -%}
    last_value({{ expression }}, true)
{%- endmacro %}

{% macro duckdb__last_value_ignoring_nulls(expression) -%}
    last_value({{ expression }} ignore nulls)
{%- endmacro %}
