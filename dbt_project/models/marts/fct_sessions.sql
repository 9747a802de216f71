{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='session_id',
) }}

with

events as (
    select * from {{ ref('int_events_sessionized') }} where session_id is not null
),

touched_sessions as (
    -- sessions with an event written since this table's last refresh (all on a full build)
    select
        session_id,
        min(event_date) as first_event_date
    from events
    where {{ written_since_last_refresh() }}
    group by session_id
),

session_events as (
    select events.*
    from events
    inner join touched_sessions on events.session_id = touched_sessions.session_id
    -- lets the engine skip the row groups of older days
    where events.event_date >= {{ dbt.dateadd('day', -1, '(select min(earliest.first_event_date) from touched_sessions as earliest)') }}
),

final as (
    select
        session_id,
        min(visitor_id) as visitor_id,
        -- anonymous events are stitched to the customer once the device identifies
        max(customer_id) as customer_id,
        min(event_at) as started_at,
        max(event_at) as ended_at,
        cast(min(event_at) as date) as session_date,
        {{ dbt.datediff("min(event_at)", "max(event_at)", "second") }} as duration_seconds,
        count(*) as n_events,
        sum(case when event_name = 'Page Viewed' then 1 else 0 end) as n_page_views,
        sum(case when event_name = 'Product Viewed' then 1 else 0 end) as n_product_views,
        sum(case when event_name = 'Products Searched' then 1 else 0 end) as n_searches,
        sum(case when event_name = 'Product Added' then 1 else 0 end) as n_cart_adds,
        sum(case when event_name = 'Product Removed' then 1 else 0 end) as n_cart_removes,
        max(case when event_name = 'Checkout Started' then 1 else 0 end) = 1 as has_checkout,
        max(case when event_name = 'Order Completed' then 1 else 0 end) = 1 as has_order,
        mode(device_type) as device_type,
        mode(os_name) as os_name,
        mode(country) as country,
        {{ refreshed_at() }} as refreshed_at
    from session_events
    group by session_id
)

select * from final
