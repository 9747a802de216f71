with

memberships as (
    select * from {{ ref('segment_memberships') }}
),

customers as (
    select * from {{ ref('dim_customers') }}
),

history as (
    select * from {{ ref('segment_memberships_snapshot') }}
),

refresh as (
    select
        {{ dbt.dateadd('day', -1, dbt.current_timestamp()) }} as day_before,
        {{ dbt.dateadd('day', -7, dbt.current_timestamp()) }} as week_before
),

earlier_sizes as (
    -- segment sizes one day and one week before this refresh, from the membership snapshot;
    -- null until the snapshot reaches that far back
    select
        history.segment_key,
        case when min(history.dbt_valid_from) <= min(refresh.day_before) then
                sum(case when history.dbt_valid_from <= refresh.day_before
                        and (history.dbt_valid_to is null or history.dbt_valid_to > refresh.day_before)
                        then 1
                    else 0
                end)
        end as n_customers_day_before,
        case when min(history.dbt_valid_from) <= min(refresh.week_before) then
                sum(case when history.dbt_valid_from <= refresh.week_before
                        and (history.dbt_valid_to is null or history.dbt_valid_to > refresh.week_before)
                        then 1
                    else 0
                end)
        end as n_customers_week_before
    from history
    cross join refresh
    group by history.segment_key
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
        {{ round_double(
            'cast(per_segment.n_customers as double) / totals.n_all_customers', 4
        ) }} as share_of_customers,
        round(per_segment.net_revenue, 2) as net_revenue,
        case
            when per_segment.n_orders > 0
                then {{ round_double(
                        'cast(per_segment.net_revenue as double) / per_segment.n_orders', 2
                    ) }}
        end as avg_order_value,
        {{ round_double(
            'cast(per_segment.n_orders as double) / per_segment.n_customers', 3
        ) }} as orders_per_customer,
        -- the counts as BIGINT (a sum is a HUGEINT in DuckDB): the contract's types
        cast(per_segment.n_reachable_email as bigint) as n_reachable_email,
        cast(per_segment.n_reachable_ads as bigint) as n_reachable_ads,
        cast(per_segment.n_customers - earlier_sizes.n_customers_day_before as bigint)
            as change_vs_day_before,
        cast(per_segment.n_customers - earlier_sizes.n_customers_week_before as bigint)
            as change_vs_week_before
    from per_segment
    cross join totals
    left join earlier_sizes on per_segment.segment_key = earlier_sizes.segment_key
)

select * from final
