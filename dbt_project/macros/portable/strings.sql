{#- Every match of `pattern` in `text` replaced (DuckDB replaces only the first without the
    'g' option, which Spark does not take: its 4th argument is a position). -#}
{% macro regexp_replace_all(text, pattern, replacement) -%}
    {{ return(adapter.dispatch('regexp_replace_all', 'segmenta')(text, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regexp_replace_all(text, pattern, replacement) -%}
    regexp_replace({{ text }}, {{ pattern }}, {{ replacement }})
{%- endmacro %}

{% macro duckdb__regexp_replace_all(text, pattern, replacement) -%}
    regexp_replace({{ text }}, {{ pattern }}, {{ replacement }}, 'g')
{%- endmacro %}

{#- Whether `text` begins with `prefix` (DuckDB: starts_with, Spark: startswith). -#}
{% macro text_starts_with(text, prefix) -%}
    {{ return(adapter.dispatch('text_starts_with', 'segmenta')(text, prefix)) }}
{%- endmacro %}

{% macro default__text_starts_with(text, prefix) -%}
    startswith({{ text }}, {{ prefix }})
{%- endmacro %}

{% macro duckdb__text_starts_with(text, prefix) -%}
    starts_with({{ text }}, {{ prefix }})
{%- endmacro %}

{#- The SHA-256 digest of `text` as 64 lowercase hex digits (DuckDB: sha256, Spark: sha2). -#}
{% macro sha256_hex(text) -%}
    {{ return(adapter.dispatch('sha256_hex', 'segmenta')(text)) }}
{%- endmacro %}

{% macro default__sha256_hex(text) -%}
    sha2({{ text }}, 256)
{%- endmacro %}

{% macro duckdb__sha256_hex(text) -%}
    sha256({{ text }})
{%- endmacro %}
