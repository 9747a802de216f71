with

customers as (
    select * from {{ ref('dim_customers') }}
),

rfm as (
    select * from {{ ref('customer_rfm') }}
),

features as (
    select * from {{ ref('customer_features') }}
),

as_of as (
    -- the store's today: the day after its newest order, as for RFM and the features
    select {{ rfm_as_of_date(ref('fct_orders')) }} as as_of_date
),

weather as (
    select * from {{ ref('weather_daily') }}
),

final as (
    -- the columns rule segments (segments/rules.yml) are written against
    select
        customers.*,
        -- among buyers: "above the median" then means above the median buyer, not "bought
        -- anything"; empty for customers without net revenue
        case
            when customers.net_revenue > 0
                then percent_rank() over (
                        partition by customers.net_revenue > 0 order by customers.net_revenue
                    )
        end as net_revenue_percentile,
        rfm.recency_days,
        rfm.frequency,
        rfm.monetary,
        rfm.r_score,
        rfm.f_score,
        rfm.m_score,
        rfm.rfm_cell,
        rfm.rfm_segment,
        -- every feature column (a new feature reaches the rule segments without an edit here)
        {{ star_except(ref('customer_features'), 'features', ['customer_id']) }},
        -- today's and tomorrow's weather in the customer's city (the newest issue: a forecast
        -- until observed; empty where the store delivers none for the city)
        as_of.as_of_date as weather_today_date,
        today.condition as weather_condition_today,
        today.is_rainy as is_rainy_today,
        today.is_hot as is_hot_today,
        today.precipitation_mm as precipitation_mm_today,
        today.temp_min_c as temp_min_today,
        today.temp_max_c as temp_max_today,
        tomorrow.condition as weather_condition_tomorrow,
        tomorrow.is_rainy as is_rainy_tomorrow,
        tomorrow.is_hot as is_hot_tomorrow,
        tomorrow.temp_max_c as temp_max_tomorrow
    from customers
    cross join as_of
    left join rfm on customers.customer_id = rfm.customer_id
    left join features on customers.customer_id = features.customer_id
    -- weather_daily has one row per day, city (case aside) and country
    left join weather as today
        on
            lower(customers.city) = lower(today.city)
            and customers.country = today.country
            and as_of.as_of_date = today.weather_date
    left join weather as tomorrow
        on
            lower(customers.city) = lower(tomorrow.city)
            and customers.country = tomorrow.country
            and as_of.as_of_date + 1 = tomorrow.weather_date
)

select * from final
