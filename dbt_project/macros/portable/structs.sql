{#-
    A struct of named fields, `fields` a dict of name to SQL expression (in order), e.g. a value
    that sorts by several columns: {{ struct_of({'at': 'event_at', 'id': 'event_id'}) }}.
    DuckDB: struct_pack(at := ...), Spark: named_struct('at', ...).
-#}
{% macro struct_of(fields) -%}
    {{ return(adapter.dispatch('struct_of', 'segmenta')(fields)) }}
{%- endmacro %}

{% macro default__struct_of(fields) -%}
    named_struct(
        {%- for name, expression in fields.items() -%}
            '{{ name }}', {{ expression }}{{ ', ' if not loop.last }}
        {%- endfor -%}
    )
{%- endmacro %}

{% macro duckdb__struct_of(fields) -%}
    struct_pack(
        {%- for name, expression in fields.items() -%}
            {{ name }} := {{ expression }}{{ ', ' if not loop.last }}
        {%- endfor -%}
    )
{%- endmacro %}
