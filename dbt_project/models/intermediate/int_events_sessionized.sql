with

events as (
    select * from {{ ref('stg_shop__events') }}
),

identities as (
    -- a device (anonymousId) belongs to the customer it was last identified as
    select
        anonymous_id,
        customer_id
    from events
    where customer_id is not null and anonymous_id is not null
    qualify row_number() over (partition by anonymous_id order by event_at desc, event_id asc) = 1
),

visitor_events as (
    select
        events.*,
        coalesce(events.customer_id, identities.customer_id) as resolved_customer_id,
        coalesce(events.anonymous_id, 'user:' || events.customer_id) as visitor_id
    from events
    left join identities on events.anonymous_id = identities.anonymous_id
),

gaps as (
    select
        *,
        -- a new session starts after 30 minutes without an event from the same visitor
        coalesce(
            {{ dbt.datediff(
                "lag(event_at) over (partition by visitor_id order by event_at, event_id)",
                "event_at", "minute") }} > 30,
            true
        ) as is_session_start
    from visitor_events
    where event_name not like 'Email%'
),

numbered as (
    select
        *,
        sum(case when is_session_start then 1 else 0 end) over (
            partition by visitor_id order by event_at, event_id rows unbounded preceding
        ) as session_number
    from gaps
),

final as (
    select
        event_id,
        visitor_id || '-' || cast(session_number as varchar) as session_id,
        visitor_id,
        resolved_customer_id as customer_id,
        event_type,
        event_name,
        product_id,
        product_category,
        order_id,
        device_type,
        os_name,
        country,
        event_at,
        event_date
    from numbered
)

select * from final
