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
        features.* exclude (customer_id)  -- noqa: RF02
    from customers
    left join rfm on customers.customer_id = rfm.customer_id
    left join features on customers.customer_id = features.customer_id
)

select * from final
