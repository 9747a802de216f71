{#- A segment name as a key: "Can't Lose Them" -> "cant_lose_them" (portable string functions;
    chr(39) is the quote: Spark reads '''' as two empty strings, no escaped quote). -#}
{% macro segment_slug(column) -%}
    replace(replace(replace(lower({{ column }}), chr(39), ''), '-', '_'), ' ', '_')
{%- endmacro %}
