{{ config(materialized='view') }}

-- Each customer's group of every attribute the fairness report (marts.segment_fairness,
-- segments/fairness.py) compares selections by: a missing or empty value is 'unknown'.

with

customers as (
    select * from {{ ref('dim_customers') }}
),

final as (
    select
        customer_id,
        coalesce(nullif(lower(trim(gender)), ''), 'unknown') as gender,
        coalesce(nullif(trim(age_band), ''), 'unknown') as age_band,
        coalesce(nullif(trim(income_band), ''), 'unknown') as income_band,
        coalesce(nullif(upper(trim(country)), ''), 'unknown') as country
    from customers
)

select * from final
