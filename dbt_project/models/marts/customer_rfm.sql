with

orders as (
    select * from {{ ref('fct_orders') }}
),

segment_names as (
    select * from {{ ref('rfm_segments') }}
),

as_of as (
    select {{ rfm_as_of_date(ref('fct_orders')) }} as as_of_date
),

erased as (
    -- erasure requests (docs/privacy.md) leave RFM with their other marts
    select customer_id from {{ ref('stg_shop__customers') }} where is_deleted
),

purchases as (
    select orders.*
    from orders
    cross join as_of
    where
        -- a purchase: completed and worth something (free-sample-only or fully returned
        -- orders do not make a buyer)
        orders.is_completed
        and orders.net_revenue > 0
        and orders.customer_id is not null
        and orders.customer_id not like 'erased-%'
        and orders.customer_id not in (select erased.customer_id from erased)
        and {{ erasure_key('orders.customer_id') }} not in (select erased.customer_id from erased)
        and orders.order_date < as_of.as_of_date
),

per_customer as (
    -- every buyer: recency from their last purchase ever, frequency and spend over the
    -- look-back (a buyer who lapsed before it has 0 of both and is scored, as "Lost" or
    -- "Hibernating", rather than left out)
    select
        purchases.customer_id,
        max(as_of.as_of_date) as as_of_date,
        -- the casts give both engines DuckDB's types (Spark's datediff is an int, its sum of a
        -- decimal(p, s) a decimal(p + 10, s): docs/portable-sql.md)
        cast(
            {{ dbt.datediff('max(purchases.order_date)', 'max(as_of.as_of_date)', 'day') }}
            as bigint
        ) as recency_days,
        count(distinct purchases.order_id) filter (
            where purchases.order_date >= as_of.as_of_date - {{ var('rfm_lookback_days') }}
        ) as frequency,
        cast(coalesce(round(sum(purchases.net_revenue) filter (
            where purchases.order_date >= as_of.as_of_date - {{ var('rfm_lookback_days') }}
        ), 2), 0) as decimal(38, 2)) as monetary
    from purchases
    cross join as_of
    group by purchases.customer_id
),

-- each measure's 1-5 score by value (macro rfm_score_levels): equal values share a score, and
-- with five or more distinct values all five levels are used
r_levels as (
    {{ rfm_score_levels('per_customer', 'recency_days', descending=true) }}
),

f_levels as (
    {{ rfm_score_levels('per_customer', 'frequency') }}
),

m_levels as (
    {{ rfm_score_levels('per_customer', 'monetary') }}
),

scored as (
    select
        per_customer.*,
        r_levels.score as r_score,
        f_levels.score as f_score,
        m_levels.score as m_score
    from per_customer
    inner join r_levels on per_customer.recency_days = r_levels.value
    inner join f_levels on per_customer.frequency = f_levels.value
    inner join m_levels on per_customer.monetary = m_levels.value
),

final as (
    select
        scored.customer_id,
        scored.as_of_date,
        scored.recency_days,
        scored.frequency,
        scored.monetary,
        scored.r_score,
        scored.f_score,
        scored.m_score,
        cast((scored.r_score) as {{ dbt.type_string() }})
        || cast((scored.f_score) as {{ dbt.type_string() }})
        || cast((scored.m_score) as {{ dbt.type_string() }}) as rfm_cell,
        segment_names.rfm_segment
    from scored
    left join segment_names
        on
            scored.r_score = segment_names.r_score
            and cast(ceil((scored.f_score + scored.m_score) / 2.0) as integer)
            = segment_names.fm_score
)

select * from final
