{#- A segment name as a key: "Can't Lose Them" -> "cant_lose_them" (portable string functions). -#}
{% macro segment_slug(column) -%}
    replace(replace(replace(lower({{ column }}), '''', ''), '-', '_'), ' ', '_')
{%- endmacro %}
