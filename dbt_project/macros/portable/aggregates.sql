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
