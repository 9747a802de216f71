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

window_orders as (
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
        and orders.order_date >= as_of.as_of_date - {{ var('rfm_lookback_days') }}
),

per_customer as (
    select
        window_orders.customer_id,
        max(as_of.as_of_date) as as_of_date,
        {{ dbt.datediff('max(window_orders.order_date)', 'max(as_of.as_of_date)', 'day') }}
            as recency_days,
        count(distinct window_orders.order_id) as frequency,
        round(sum(window_orders.net_revenue), 2) as monetary
    from window_orders
    cross join as_of
    group by window_orders.customer_id
),

scored as (
    -- percent_rank gives tied values the same rank, so equal values always get equal scores;
    -- 5 is best: most recent, most frequent, highest spend
    select
        *,
        cast(least(5, 1 + floor(5 * percent_rank() over (order by recency_days desc))) as integer)
            as r_score,
        cast(least(5, 1 + floor(5 * percent_rank() over (order by frequency))) as integer) as f_score,
        cast(least(5, 1 + floor(5 * percent_rank() over (order by monetary))) as integer) as m_score
    from per_customer
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
        cast((scored.r_score) as varchar)
        || cast((scored.f_score) as varchar)
        || cast((scored.m_score) as varchar) as rfm_cell,
        segment_names.rfm_segment
    from scored
    left join segment_names
        on
            scored.r_score = segment_names.r_score
            and cast(ceil((scored.f_score + scored.m_score) / 2.0) as integer)
            = segment_names.fm_score
)

select * from final
