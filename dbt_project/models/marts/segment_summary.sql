with

memberships as (
    select * from {{ ref('segment_memberships') }}
),

customers as (
    select * from {{ ref('dim_customers') }}
),

per_segment as (
    select
        memberships.segment_key,
        min(memberships.segment_name) as segment_name,
        min(memberships.segment_type) as segment_type,
        min(memberships.as_of_date) as as_of_date,
        count(*) as n_customers,
        sum(customers.net_revenue) as net_revenue,
        sum(customers.n_orders) as n_orders,
        sum(case when customers.has_email_consent and not customers.is_deleted
                then 1
            else 0
        end) as n_reachable_email,
        sum(case when customers.has_ads_consent and not customers.is_deleted
                then 1
            else 0
        end) as n_reachable_ads
    from memberships
    inner join customers on memberships.customer_id = customers.customer_id
    group by memberships.segment_key
),

totals as (
    select count(*) as n_all_customers from customers
),

final as (
    select
        per_segment.segment_key,
        per_segment.segment_name,
        per_segment.segment_type,
        per_segment.as_of_date,
        per_segment.n_customers,
        round(per_segment.n_customers * 1.0 / totals.n_all_customers, 4) as share_of_customers,
        round(per_segment.net_revenue, 2) as net_revenue,
        case
            when per_segment.n_orders > 0
                then round(per_segment.net_revenue / per_segment.n_orders, 2)
        end as avg_order_value,
        round(per_segment.n_orders * 1.0 / per_segment.n_customers, 3) as orders_per_customer,
        per_segment.n_reachable_email,
        per_segment.n_reachable_ads
    from per_segment
    cross join totals
)

select * from final
