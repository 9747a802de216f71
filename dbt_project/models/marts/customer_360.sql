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

final as (
    -- the columns rule segments (segments/rules.yml) are written against
    select
        customers.*,
        percent_rank() over (order by customers.net_revenue) as net_revenue_percentile,
        rfm.recency_days,
        rfm.frequency,
        rfm.monetary,
        rfm.r_score,
        rfm.f_score,
        rfm.m_score,
        rfm.rfm_cell,
        rfm.rfm_segment,
        features.* exclude (customer_id)  -- noqa: RF02
    from customers
    left join rfm on customers.customer_id = rfm.customer_id
    left join features on customers.customer_id = features.customer_id
)

select * from final
