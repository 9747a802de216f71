{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_sessions_from_restart_points() }}",
    post_hook="{{ record_watermark() }}",
) }}
-- depends_on: {{ source('shop', 'events_changes') }}

-- Incremental: the pre-hook deleted each rewritten visitor's sessions from its restart point
-- on; those visitors' later sessions are summed again here from their events.

with

{%- if is_incremental() %}

rewritten as (
    {{ visitors_rewritten() }}
),

kept as (
    -- what the pre-hook left of each rewritten visitor: the sessions before its restart point
    select
        rewritten.visitor_id,
        max(earlier.started_at) as kept_until
    from rewritten
    left join {{ this }} as earlier on rewritten.visitor_id = earlier.visitor_id
    group by rewritten.visitor_id
),

kept_sessions as (
    select session_id from {{ this }}
    where visitor_id in (select rewritten.visitor_id from rewritten)
),

{%- endif %}

events as (
    select
        events.*,
        -- the events' order within a session, as one sortable value
        struct_pack(at := events.event_at, id := events.event_id) as event_seq
    from {{ ref('int_events_sessionized') }} as events
    {%- if is_incremental() %}
        inner join kept on events.visitor_id = kept.visitor_id
    {%- endif %}
    where
        events.session_id is not null  -- noqa: LT02
        {%- if is_incremental() %}
            -- the kept sessions began before kept_until: later events are of new sessions
            and (kept.kept_until is null or events.event_at > kept.kept_until)
            and events.session_id not in (select kept_sessions.session_id from kept_sessions)
        {%- endif %}
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
        arg_min(device_type, event_seq) as device_type,
        arg_min(os_name, event_seq) as os_name,
        arg_min(country, event_seq) as country,
        {{ latest_change_id() }} as change_id
    from events
    group by session_id
)

select * from final
