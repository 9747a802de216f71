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

local_weather as (
    -- today's and tomorrow's weather in each customer's city (forecasts, until observed)
    select
        customers.customer_id,
        max(as_of.as_of_date) as weather_today_date,
        any_value(weather.condition) filter (where weather.weather_date = as_of.as_of_date)
            as weather_condition_today,
        bool_or(weather.is_rainy) filter (where weather.weather_date = as_of.as_of_date)
            as is_rainy_today,
        bool_or(weather.is_hot) filter (where weather.weather_date = as_of.as_of_date)
            as is_hot_today,
        max(weather.precipitation_mm) filter (where weather.weather_date = as_of.as_of_date)
            as precipitation_mm_today,
        max(weather.temp_min_c) filter (where weather.weather_date = as_of.as_of_date)
            as temp_min_today,
        max(weather.temp_max_c) filter (where weather.weather_date = as_of.as_of_date)
            as temp_max_today,
        any_value(weather.condition) filter (where weather.weather_date = as_of.as_of_date + 1)
            as weather_condition_tomorrow,
        bool_or(weather.is_rainy) filter (where weather.weather_date = as_of.as_of_date + 1)
            as is_rainy_tomorrow,
        bool_or(weather.is_hot) filter (where weather.weather_date = as_of.as_of_date + 1)
            as is_hot_tomorrow,
        max(weather.temp_max_c) filter (where weather.weather_date = as_of.as_of_date + 1)
            as temp_max_tomorrow
    from customers
    cross join as_of
    inner join {{ ref('weather_daily') }} as weather
        on
            lower(customers.city) = lower(weather.city)
            and customers.country = weather.country
            and weather.weather_date between as_of.as_of_date and as_of.as_of_date + 1
    group by customers.customer_id
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
        features.* exclude (customer_id),  -- noqa: RF02
        -- weather in the customer's city (empty where the store delivers none for it)
        local_weather.weather_today_date,
        local_weather.weather_condition_today,
        local_weather.is_rainy_today,
        local_weather.is_hot_today,
        local_weather.precipitation_mm_today,
        local_weather.temp_min_today,
        local_weather.temp_max_today,
        local_weather.weather_condition_tomorrow,
        local_weather.is_rainy_tomorrow,
        local_weather.is_hot_tomorrow,
        local_weather.temp_max_tomorrow
    from customers
    left join rfm on customers.customer_id = rfm.customer_id
    left join features on customers.customer_id = features.customer_id
    left join local_weather on customers.customer_id = local_weather.customer_id
)

select * from final
