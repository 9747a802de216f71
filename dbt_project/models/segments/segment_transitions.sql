with

history as (
    -- one segment per customer at a time only holds for these types
    select * from {{ ref('segment_memberships_snapshot') }}
    where segment_type in ('rfm', 'ml')
),

first_recorded as (
    select min(dbt_valid_from) as first_valid_from from history
),

left_segment as (
    select
        customer_id,
        segment_type,
        segment_key,
        dbt_valid_to as changed_at
    from history
    where dbt_valid_to is not null
),

entered_segment as (
    select
        history.customer_id,
        history.segment_type,
        history.segment_key,
        history.dbt_valid_from as changed_at
    from history
    cross join first_recorded
    where history.dbt_valid_from > first_recorded.first_valid_from
),

moves as (
    select
        coalesce(left_segment.customer_id, entered_segment.customer_id) as customer_id,
        coalesce(left_segment.segment_type, entered_segment.segment_type) as segment_type,
        coalesce(left_segment.changed_at, entered_segment.changed_at) as changed_at,
        coalesce(left_segment.segment_key, '(none)') as from_segment_key,
        coalesce(entered_segment.segment_key, '(none)') as to_segment_key
    from left_segment
    full outer join entered_segment
        on
            left_segment.customer_id = entered_segment.customer_id
            and left_segment.segment_type = entered_segment.segment_type
            and left_segment.changed_at = entered_segment.changed_at
),

final as (
    select
        cast(changed_at as date) as transition_date,
        segment_type,
        from_segment_key,
        to_segment_key,
        count(*) as n_customers
    from moves
    group by 1, 2, 3, 4
)

select * from final
