{#- The pseudonymous key of an erased customer (core/privacy.py `customer_key`). -#}
{% macro erasure_key(column) -%}
    ('erased-' || left({{ sha256_hex("'segmenta-erasure:' || " ~ column) }}, 20))
{%- endmacro %}
