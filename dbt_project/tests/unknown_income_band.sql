{{ config(
    severity='warn',
    meta={'dagster': {'ref': {'name': 'dim_customers'}}},
) }}

-- unknown_income_band (a warning: the profile loads, its consents count): newest profile
-- snapshots whose income_band is filled but none of low, lower_middle, middle, upper_middle,
-- high (case, spaces and hyphens aside). The customer gets their postal area's band instead
-- (seed postal_area_income), or none. Fix: map the store's bands onto the five in its export.

with

latest as (
    select customer_id, income_band
    from (
        select
            customer_id,
            income_band,
            row_number() over (
                partition by customer_id
                order by updated_at desc, _partition_date desc, _source_line desc
            ) as _snapshot_rank
        from {{ source('shop', 'customers') }}
    ) as ranked
    where _snapshot_rank = 1
)

-- (read against dim_customers, the model it warns on: dbt runs it in the step that builds it)
select
    latest.income_band,
    count(*) as n_customers
from latest
inner join {{ ref('dim_customers') }} as customers
    on latest.customer_id = customers.customer_id
where
    nullif(trim(latest.income_band), '') is not null
    and customers.income_band_source is distinct from 'profile'
group by latest.income_band
