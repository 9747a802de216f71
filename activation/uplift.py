"""marts.audience_uplift: did syncing an audience change what its customers did?

For each audience, the customers assigned when it was first synced are split by their
deterministic arm (`activation.audience_assignments`): `target` (sent to the destinations) and
`holdout` (kept out). Their completed orders since the first sync give conversion rate, revenue
per customer and average order value per arm, and the differences with 95 % confidence intervals
(normal approximation for the conversion difference, Welch for revenue per customer).
"""

from __future__ import annotations

import duckdb

from activation.state import ensure_tables

UPLIFT_SQL = """
create or replace table marts.audience_uplift as
with first_sync as (
    select audience_key, min(started_at) as first_synced_at
    from activation.sync_runs
    where status in ('succeeded', 'add_only') and mode <> 'dry_run'
    group by audience_key
),
arms as (
    select assignments.audience_key, assignments.customer_id, assignments.arm,
           first_sync.first_synced_at
    from activation.audience_assignments as assignments
    inner join first_sync using (audience_key)
    where assignments.first_assigned_at <= first_sync.first_synced_at + interval 1 day
),
outcomes as (
    select arms.audience_key, arms.arm, arms.customer_id, arms.first_synced_at,
           count(orders.order_id) as n_orders,
           coalesce(sum(orders.net_revenue), 0) as revenue
    from arms
    left join marts.fct_orders as orders
        on orders.customer_id = arms.customer_id and orders.is_completed
       and orders.ordered_at >= arms.first_synced_at
    group by all
),
by_arm as (
    select audience_key, arm, any_value(first_synced_at) as first_synced_at,
           count(*) as n_customers,
           avg(case when n_orders > 0 then 1.0 else 0.0 end) as conversion_rate,
           avg(revenue) as revenue_per_customer,
           coalesce(var_samp(revenue), 0) as revenue_variance,
           sum(revenue) / nullif(sum(n_orders), 0) as average_order_value,
           sum(n_orders) as n_orders
    from outcomes group by all
),
compared as (
    select target.audience_key, target.first_synced_at,
           date_diff('day', target.first_synced_at, current_timestamp::timestamp)
               as days_since_first_sync,
           target.n_customers as n_synced, holdout.n_customers as n_holdout,
           target.conversion_rate as conversion_rate_synced,
           holdout.conversion_rate as conversion_rate_holdout,
           target.conversion_rate - holdout.conversion_rate as conversion_uplift,
           1.96 * sqrt(target.conversion_rate * (1 - target.conversion_rate) / target.n_customers
                       + holdout.conversion_rate * (1 - holdout.conversion_rate)
                       / holdout.n_customers) as conversion_margin,
           target.revenue_per_customer as revenue_per_customer_synced,
           holdout.revenue_per_customer as revenue_per_customer_holdout,
           target.revenue_per_customer - holdout.revenue_per_customer
               as revenue_per_customer_uplift,
           1.96 * sqrt(target.revenue_variance / target.n_customers
                       + holdout.revenue_variance / holdout.n_customers) as revenue_margin,
           target.average_order_value as aov_synced,
           holdout.average_order_value as aov_holdout,
           target.n_orders as n_orders_synced, holdout.n_orders as n_orders_holdout
    from by_arm as target
    inner join by_arm as holdout
        on target.audience_key = holdout.audience_key and holdout.arm = 'holdout'
    where target.arm = 'target'
)
select audience_key, first_synced_at, days_since_first_sync, n_synced, n_holdout,
       conversion_rate_synced, conversion_rate_holdout, conversion_uplift,
       conversion_uplift - conversion_margin as conversion_uplift_ci_low,
       conversion_uplift + conversion_margin as conversion_uplift_ci_high,
       revenue_per_customer_synced, revenue_per_customer_holdout, revenue_per_customer_uplift,
       revenue_per_customer_uplift - revenue_margin as revenue_per_customer_uplift_ci_low,
       revenue_per_customer_uplift + revenue_margin as revenue_per_customer_uplift_ci_high,
       aov_synced, aov_holdout, n_orders_synced, n_orders_holdout
from compared
order by audience_key
"""


def build_uplift(con: duckdb.DuckDBPyConnection) -> int:
    """(Re)build marts.audience_uplift; returns its number of audiences."""
    ensure_tables(con)
    con.execute(UPLIFT_SQL)
    return con.execute("select count(*) from marts.audience_uplift").fetchone()[0]
