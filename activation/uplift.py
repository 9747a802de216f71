"""marts.audience_uplift: did syncing an audience change what its customers did?

For each audience, the customers assigned when it was first synced are split by their
deterministic arm (`activation.audience_assignments`, `core.holdout.in_holdout`): `target` (sent
to the destinations) and `holdout` (kept out). Their outcomes are counted on the **store's
clock**: from the as-of date of the first sync's data (`activation.sync_runs.as_of_date`, the
first day that data did not cover; the wall-clock day of `started_at` for runs recorded before
the column existed) to the newest loaded day, so a replayed or late-loaded store measures the
days after the sync, whatever the wall clock said. `days_since_first_sync` is the store's
as-of date now minus the first sync's.

KPIs per arm, the difference (target - holdout) and its 95 % interval:

- conversion: share of customers with a completed order in the window; normal approximation
  (unpooled, Wald) for the difference of two proportions;
- revenue per customer: net revenue of completed orders per customer (0 for non-buyers);
  Welch (unequal variances, normal critical value 1.96);
- AOV: net revenue per completed order, a ratio of sums: delta method (linearised per customer,
  Var(R) ~ var(y - R x) / (n mean(x)^2) in each arm, the two added);
- email click-through rate: `Email Link Clicked` per `Email Opened` event in the window
  (`intermediate.int_customer_activity_daily`), a ratio of sums: delta method as for AOV;
- predicted 90-day value: `ml.customer_clv.expected_value_90d` as last scored (0 for a customer
  the model does not score); Welch. This is the model's view of the arms now, not an outcome.

The arms are the audience's members assigned by the end of the first sync's run (every
destination of it): customers who joined the audience later are not compared, since joining
can be caused by the sync (a campaign buyer becomes a "buyer"). Intervals are missing where an
arm has fewer than `MIN_ARM_FOR_INTERVAL` (10) customers, too few for the normal approximation
(or no orders / opens for a ratio).
"""

from __future__ import annotations

import duckdb

from activation.state import ensure_tables

MIN_ARM_FOR_INTERVAL = 10
_EMPTY_ACTIVITY = ("(select null::varchar as customer_id, null::date as activity_date, "
                   "0 as n_email_opens, 0 as n_email_clicks where false)")
_EMPTY_CLV = "(select null::varchar as customer_id, 0.0 as expected_value_90d where false)"

UPLIFT_SQL = """
create or replace table marts.audience_uplift as
with store_clock as (
    select (select max(order_date) from marts.fct_orders) + 1 as store_as_of_date
),
first_sync as (
    select audience_key, min(started_at) as first_synced_at,
           arg_min(run_id, started_at) as first_run_id,
           arg_min(coalesce(as_of_date, cast(started_at as date)), started_at)
               as first_sync_as_of_date
    from activation.sync_runs
    where status in ('succeeded', 'add_only') and mode <> 'dry_run'
    group by audience_key
),
first_run as (
    -- members assigned by the end of the first sync's run (all its destinations)
    select first_sync.audience_key,
           coalesce(max(runs.finished_at), min(first_sync.first_synced_at) + interval 1 day)
               as assigned_by
    from first_sync
    inner join activation.sync_runs as runs
        on runs.audience_key = first_sync.audience_key and runs.run_id = first_sync.first_run_id
    group by first_sync.audience_key
),
arms as (
    select assignments.audience_key, assignments.customer_id, assignments.arm,
           first_sync.first_synced_at, first_sync.first_sync_as_of_date
    from activation.audience_assignments as assignments
    inner join first_sync using (audience_key)
    inner join first_run using (audience_key)
    where assignments.first_assigned_at <= first_run.assigned_by
),
order_outcomes as (
    select arms.audience_key, arms.customer_id,
           count(orders.order_id) as n_orders,
           coalesce(sum(orders.net_revenue), 0) as revenue
    from arms
    left join marts.fct_orders as orders
        on orders.customer_id = arms.customer_id and orders.is_completed
       and orders.order_date >= arms.first_sync_as_of_date
    group by all
),
email_outcomes as (
    select arms.audience_key, arms.customer_id,
           coalesce(sum(activity.n_email_opens), 0) as n_opens,
           coalesce(sum(activity.n_email_clicks), 0) as n_clicks
    from arms
    left join {activity} as activity
        on activity.customer_id = arms.customer_id
       and activity.activity_date >= arms.first_sync_as_of_date
    group by all
),
outcomes as (
    select arms.*, order_outcomes.n_orders, order_outcomes.revenue,
           email_outcomes.n_opens, email_outcomes.n_clicks,
           coalesce(clv.expected_value_90d, 0) as predicted_value_90d
    from arms
    inner join order_outcomes using (audience_key, customer_id)
    inner join email_outcomes using (audience_key, customer_id)
    left join {clv} as clv using (customer_id)
),
ratios as (
    select audience_key, arm,
           sum(revenue) / nullif(sum(n_orders), 0) as aov,
           sum(n_clicks) / nullif(sum(n_opens), 0) as ctr
    from outcomes group by all
),
by_arm as (
    select outcomes.audience_key, outcomes.arm,
           any_value(outcomes.first_synced_at) as first_synced_at,
           any_value(outcomes.first_sync_as_of_date) as first_sync_as_of_date,
           count(*) as n_customers,
           avg(case when n_orders > 0 then 1.0 else 0.0 end) as conversion_rate,
           avg(revenue) as revenue_per_customer,
           var_samp(revenue) as revenue_variance,
           any_value(ratios.aov) as aov,
           var_samp(revenue - ratios.aov * n_orders) / count(*) / avg(n_orders) ^ 2
               as aov_variance,
           any_value(ratios.ctr) as ctr,
           var_samp(n_clicks - ratios.ctr * n_opens) / count(*) / avg(n_opens) ^ 2
               as ctr_variance,
           avg(predicted_value_90d) as predicted_value_90d,
           var_samp(predicted_value_90d) as predicted_value_variance,
           sum(n_orders) as n_orders, sum(n_opens) as n_email_opens,
           sum(n_clicks) as n_email_clicks
    from outcomes
    inner join ratios using (audience_key, arm)
    group by all
),
compared as (
    select target.audience_key, target.first_synced_at, target.first_sync_as_of_date,
           store_clock.store_as_of_date,
           date_diff('day', target.first_sync_as_of_date, store_clock.store_as_of_date)
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
           target.aov as aov_synced, holdout.aov as aov_holdout,
           target.aov - holdout.aov as aov_uplift,
           1.96 * sqrt(target.aov_variance + holdout.aov_variance) as aov_margin,
           target.ctr as email_ctr_synced, holdout.ctr as email_ctr_holdout,
           target.ctr - holdout.ctr as email_ctr_uplift,
           1.96 * sqrt(target.ctr_variance + holdout.ctr_variance) as ctr_margin,
           target.predicted_value_90d as predicted_value_90d_synced,
           holdout.predicted_value_90d as predicted_value_90d_holdout,
           target.predicted_value_90d - holdout.predicted_value_90d
               as predicted_value_90d_uplift,
           1.96 * sqrt(target.predicted_value_variance / target.n_customers
                       + holdout.predicted_value_variance / holdout.n_customers)
               as predicted_value_margin,
           target.n_orders as n_orders_synced, holdout.n_orders as n_orders_holdout,
           target.n_email_opens as n_email_opens_synced,
           holdout.n_email_opens as n_email_opens_holdout
    from by_arm as target
    inner join by_arm as holdout
        on target.audience_key = holdout.audience_key and holdout.arm = 'holdout'
    cross join store_clock
    where target.arm = 'target'
),
intervals as (
    -- no interval from an arm too small for the normal approximation
    select * replace (
        case when n_synced >= {min_arm} and n_holdout >= {min_arm} then conversion_margin end
            as conversion_margin,
        case when n_synced >= {min_arm} and n_holdout >= {min_arm} then revenue_margin end
            as revenue_margin,
        case when n_synced >= {min_arm} and n_holdout >= {min_arm} then aov_margin end
            as aov_margin,
        case when n_synced >= {min_arm} and n_holdout >= {min_arm} then ctr_margin end
            as ctr_margin,
        case when n_synced >= {min_arm} and n_holdout >= {min_arm} then predicted_value_margin
        end as predicted_value_margin)
    from compared
)
select audience_key, first_synced_at, first_sync_as_of_date, store_as_of_date,
       days_since_first_sync, n_synced, n_holdout,
       conversion_rate_synced, conversion_rate_holdout, conversion_uplift,
       conversion_uplift - conversion_margin as conversion_uplift_ci_low,
       conversion_uplift + conversion_margin as conversion_uplift_ci_high,
       revenue_per_customer_synced, revenue_per_customer_holdout, revenue_per_customer_uplift,
       revenue_per_customer_uplift - revenue_margin as revenue_per_customer_uplift_ci_low,
       revenue_per_customer_uplift + revenue_margin as revenue_per_customer_uplift_ci_high,
       aov_synced, aov_holdout, aov_uplift,
       aov_uplift - aov_margin as aov_uplift_ci_low,
       aov_uplift + aov_margin as aov_uplift_ci_high,
       email_ctr_synced, email_ctr_holdout, email_ctr_uplift,
       email_ctr_uplift - ctr_margin as email_ctr_uplift_ci_low,
       email_ctr_uplift + ctr_margin as email_ctr_uplift_ci_high,
       predicted_value_90d_synced, predicted_value_90d_holdout, predicted_value_90d_uplift,
       predicted_value_90d_uplift - predicted_value_margin
           as predicted_value_90d_uplift_ci_low,
       predicted_value_90d_uplift + predicted_value_margin
           as predicted_value_90d_uplift_ci_high,
       n_orders_synced, n_orders_holdout, n_email_opens_synced, n_email_opens_holdout
from intervals
order by audience_key
"""


def build_uplift(con: duckdb.DuckDBPyConnection) -> int:
    """(Re)build marts.audience_uplift; returns its number of audiences."""
    ensure_tables(con)
    existing = {f"{schema}.{name}" for schema, name in con.execute(
        "select table_schema, table_name from information_schema.tables").fetchall()}
    activity = "intermediate.int_customer_activity_daily"
    con.execute(UPLIFT_SQL.format(
        activity=activity if activity in existing else _EMPTY_ACTIVITY,
        clv="ml.customer_clv" if "ml.customer_clv" in existing else _EMPTY_CLV,
        min_arm=MIN_ARM_FOR_INTERVAL))
    return con.execute("select count(*) from marts.audience_uplift").fetchone()[0]
