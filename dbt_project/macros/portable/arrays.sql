{#- The `position`-th element of an array, counting from 1 (DuckDB's `[]` counts from 1,
    Spark's from 0; `element_at` counts from 1 on Spark but is a map function on DuckDB). -#}
{% macro array_item(array, position) -%}
    {{ return(adapter.dispatch('array_item', 'segmenta')(array, position)) }}
{%- endmacro %}

{% macro default__array_item(array, position) -%}
    element_at({{ array }}, {{ position }})
{%- endmacro %}

{% macro duckdb__array_item(array, position) -%}
    {{ array }}[{{ position }}]
{%- endmacro %}
