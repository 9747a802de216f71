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
        and orders.order_date < as_of.as_of_date
        and orders.order_date >= as_of.as_of_date - {{ var('rfm_lookback_days') }}
),

per_customer as (
    select
        window_orders.customer_id,
        any_value(as_of.as_of_date) as as_of_date,
        date_diff('day', max(window_orders.order_date), any_value(as_of.as_of_date))
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
        least(5, 1 + floor(5 * percent_rank() over (order by recency_days desc)))::integer
            as r_score,
        least(5, 1 + floor(5 * percent_rank() over (order by frequency)))::integer as f_score,
        least(5, 1 + floor(5 * percent_rank() over (order by monetary)))::integer as m_score
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
        (scored.r_score)::varchar
        || (scored.f_score)::varchar
        || (scored.m_score)::varchar as rfm_cell,
        segment_names.rfm_segment
    from scored
    left join segment_names
        on
            scored.r_score = segment_names.r_score
            and ceil((scored.f_score + scored.m_score) / 2.0)::integer
            = segment_names.fm_score
)

select * from final
