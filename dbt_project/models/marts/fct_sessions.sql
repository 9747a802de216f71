{{ config(
    materialized=incremental_on_duckdb(),
    incremental_strategy='append',
    pre_hook=incremental_hooks(["{{ record_session_restarts() }}",
                                "{{ delete_sessions_from_restart_points() }}"]),
    post_hook=incremental_hooks(["{{ record_watermark() }}",
                                 "drop table if exists {{ session_restarts_relation() }}"]),
) }}
-- depends_on: {{ source('shop', 'events_changes') }}

-- Incremental: the pre-hooks recorded each rewritten visitor's restart point and deleted its
-- sessions from there on; the sessions started since are summed again here from their events.

with

events as (
    select
        events.*,
        -- the events' order within a session, as one sortable value
        {{ struct_of({'at': 'events.event_at', 'id': 'events.event_id'}) }} as event_seq
    from {{ ref('int_events_sessionized') }} as events
    {%- if is_incremental() %}
        inner join {{ session_restarts_relation() }} as restarts
            on events.visitor_id = restarts.visitor_id
            and events.session_started_at >= restarts.restart_at
    {%- endif %}
    where events.session_id is not null
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
        count(*) filter (where event_name = 'Page Viewed') as n_page_views,
        count(*) filter (where event_name = 'Product Viewed') as n_product_views,
        count(*) filter (where event_name = 'Products Searched') as n_searches,
        count(*) filter (where event_name = 'Product Added') as n_cart_adds,
        count(*) filter (where event_name = 'Product Removed') as n_cart_removes,
        max(case when event_name = 'Checkout Started' then 1 else 0 end) = 1 as has_checkout,
        max(case when event_name = 'Order Completed' then 1 else 0 end) = 1 as has_order,
        -- the session's device, OS and country are those of its first event that names them
        -- (as web analytics scope them); mode() kept a hash table per session and column
        {{ min_by_non_null('device_type', 'event_seq') }} as device_type,
        {{ min_by_non_null('os_name', 'event_seq') }} as os_name,
        {{ min_by_non_null('country', 'event_seq') }} as country,
        {{ latest_change_id() }} as change_id
    from events
    group by session_id
)

select * from final
