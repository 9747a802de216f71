{#-
    A DOUBLE rounded to `digits` decimals as DuckDB rounds it: round(x * 10^digits) / 10^digits,
    halves away from zero. Spark's round(double, d) rounds the double's shortest decimal form
    instead (1.005, stored as 1.00499..., gives 1.01 on Spark and 1.0 on DuckDB): one cent
    apart for 5 of 2,000 customers in the trial port. Only for DOUBLE inputs: a DECIMAL rounds
    the same on both engines with round().
-#}
{% macro round_double(expression, digits) -%}
    {{ return(adapter.dispatch('round_double', 'segmenta')(expression, digits)) }}
{%- endmacro %}

{% macro default__round_double(expression, digits) -%}
    (round(cast({{ expression }} as double) * cast(1e{{ digits }} as double), 0)
        / cast(1e{{ digits }} as double))
{%- endmacro %}

{% macro duckdb__round_double(expression, digits) -%}
    round({{ expression }}, {{ digits }})
{%- endmacro %}
