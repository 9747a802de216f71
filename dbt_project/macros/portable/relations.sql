{#-
    The columns of `relation` but those in `except`, each prefixed with `relation_alias.`:
    the portable form of DuckDB's `select alias.* exclude (...)`. The relation must exist when
    the model compiles (a ref built before it); before that (dbt parse, a lint against an
    empty warehouse) it renders `alias.*`.
-#}
{% macro star_except(relation, relation_alias, except) -%}
    {%- set columns = adapter.get_columns_in_relation(relation) if execute else [] -%}
    {%- set excluded = except | map('lower') | list -%}
    {%- set kept = [] -%}
    {%- for column in columns if column.name | lower not in excluded -%}
        {%- do kept.append(relation_alias ~ '.' ~ column.name) -%}
    {%- endfor -%}
    {%- if kept -%}
        {{ kept | join(',\n        ') }}
    {%- else -%}
        {{ relation_alias }}.*
    {%- endif -%}
{%- endmacro %}
