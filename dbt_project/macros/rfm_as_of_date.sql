{#- The RFM as-of date: the `as_of_date` var, or else the day after the newest order. -#}
{% macro rfm_as_of_date(orders_relation) -%}
    {%- if var('as_of_date', '') -%}
        cast('{{ var("as_of_date") }}' as date)
    {%- else -%}
        (select cast(max(order_date) as date) + 1 from {{ orders_relation }})
    {%- endif -%}
{%- endmacro %}
