with

customers as (
    select
        *,
        -- completed years of age today, a double (DuckDB divides by the decimal 365.25 as
        -- doubles, Spark keeps a decimal; Spark's floor gives a bigint)
        cast(floor(
            cast({{ dbt.datediff('birth_date', 'current_date', 'day') }} as double) / 365.25
        ) as double) as age_years
    from {{ ref('stg_shop__customers') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
),

devices as (
    select * from {{ ref('int_events_summed_to_customer') }}
),

climate as (
    select * from {{ ref('geo_climate') }}
),

postal_income as (
    -- the income band of a customer's postal area: the longest matching prefix wins
    select
        customers.customer_id,
        max_by(areas.income_band, length(areas.postal_prefix)) as income_band
    from customers
    inner join {{ ref('postal_area_income') }} as areas
        on
            upper(customers.country) = areas.country
            and {{ text_starts_with('upper(customers.postal_code)', 'upper(areas.postal_prefix)') }}
    group by customers.customer_id
),

erased as (
    -- erasure requests (docs/privacy.md): not a customer of any mart any more
    select customer_id from customers where is_deleted
),

known_ids as (
    -- every customer the store knows: with a profile, or only from their orders
    select customer_id from customers where not is_deleted
    union
    select customer_id from orders
    where
        customer_id is not null
        -- an erased customer's orders keep only a pseudonymous key (core/privacy.py)
        and customer_id not like 'erased-%'
        and customer_id not in (select erased.customer_id from erased)
        -- ... also while an incremental table still names one by id
        and {{ erasure_key('customer_id') }} not in (select erased.customer_id from erased)
),

order_metrics as (
    select
        customer_id,
        min(case when is_completed then ordered_at end) as first_order_at,
        max(case when is_completed then ordered_at end) as last_order_at,
        count(*) filter (where is_completed) as n_orders,
        count(*) as n_orders_placed,
        -- decimal(38, 2) on both engines (Spark's sum of a decimal(18, 2) is a decimal(28, 2))
        cast(sum(net_revenue) as decimal(38, 2)) as net_revenue,
        sum(case when is_completed then gross_revenue end) as gross_revenue,
        sum(case when is_completed then returned_revenue end) as returned_revenue,
        -- where the newest order went: the country of a customer without one on a profile
        -- (a store that exports only orders)
        max_by(shipping_country, ordered_at) filter (
            where shipping_country is not null and shipping_country <> ''
        ) as last_shipping_country
    from orders
    where customer_id is not null
    group by customer_id
),

located as (
    select
        known_ids.customer_id,
        coalesce(customers.country, order_metrics.last_shipping_country) as country
    from known_ids
    left join customers on known_ids.customer_id = customers.customer_id
    left join order_metrics on known_ids.customer_id = order_metrics.customer_id
),

final as (
    select
        ----------  ids
        known_ids.customer_id,
        customers.customer_id is not null as has_profile,

        ----------  demographics
        customers.gender,
        case
            when customers.birth_date is null then 'unknown'
            when customers.age_years < 25 then '18-24'
            when customers.age_years < 35 then '25-34'
            when customers.age_years < 45 then '35-44'
            when customers.age_years < 55 then '45-54'
            when customers.age_years < 65 then '55-64'
            else '65+'
        end as age_band,
        customers.age_years,
        -- the profile's band, else its postal area's (seed postal_area_income)
        coalesce(customers.income_band, postal_income.income_band) as income_band,
        case
            when customers.income_band is not null then 'profile'
            when postal_income.income_band is not null then 'postal_area'
        end as income_band_source,

        ----------  geography (a city's own climate row wins over its country's; without a
        ----------  profile, the country of the newest order)
        customers.city,
        customers.region,
        located.country,
        coalesce(city_climate.climate_zone, country_climate.climate_zone) as climate_zone,
        coalesce(city_climate.hemisphere, country_climate.hemisphere) as hemisphere,

        ----------  technographics
        devices.main_device,
        devices.main_os,
        devices.last_seen_at,

        ----------  consents and flags
        -- no profile, no consent on record: treat as not consented
        coalesce(customers.has_email_consent, false) as has_email_consent,
        coalesce(customers.has_ads_consent, false) as has_ads_consent,
        coalesce(customers.is_deleted, false) as is_deleted,

        ----------  cohort
        customers.signup_at,
        cast(date_trunc('month', customers.signup_at) as date) as signup_cohort,

        ----------  lifetime order metrics
        order_metrics.first_order_at,
        order_metrics.last_order_at,
        coalesce(order_metrics.n_orders, 0) as n_orders,
        coalesce(order_metrics.net_revenue, 0) as net_revenue,
        case
            when order_metrics.n_orders > 0
                then {{ round_double(
                        'cast(order_metrics.net_revenue as double) / order_metrics.n_orders', 2
                    ) }}
        end as avg_order_value,
        case
            when order_metrics.gross_revenue > 0
                then {{ round_double(
                        'cast(order_metrics.returned_revenue as double)'
                        ~ ' / order_metrics.gross_revenue', 4
                    ) }}
        end as return_rate

    from known_ids
    left join customers on known_ids.customer_id = customers.customer_id
    left join order_metrics on known_ids.customer_id = order_metrics.customer_id
    left join devices on known_ids.customer_id = devices.customer_id
    left join located on known_ids.customer_id = located.customer_id
    left join postal_income on known_ids.customer_id = postal_income.customer_id
    left join climate as city_climate
        on located.country = city_climate.country and customers.city = city_climate.city
    left join climate as country_climate
        on located.country = country_climate.country and country_climate.city is null
)

select * from final
