{{ config(
    materialized=incremental_on_duckdb(),
    incremental_strategy='append',
    pre_hook=incremental_hooks("{{ delete_activity_from_changed_days() }}"),
    post_hook=incremental_hooks("{{ record_watermark() }}"),
) }}
-- depends_on: {{ source('shop', 'events_changes') }}

-- A customer's events summed per visitor (device), day, device type, OS, product category and
-- email campaign: the compact input of every customer-level behaviour metric. Incremental: the
-- pre-hook deleted each rewritten visitor's days from the day of its earliest change on; the
-- events of those days are summed again here, so the work follows what changed, not the
-- history (a join bounded by the changed day, not by the visitor's last kept day, lets DuckDB
-- skip the row groups of older days).

with

{%- if is_incremental() %}

rewritten as (
    {{ visitors_rewritten() }}
),

{%- endif %}

events as (
    select events.*
    from {{ ref('int_events_sessionized') }} as events
    {%- if is_incremental() %}
        inner join rewritten
            on events.visitor_id = rewritten.visitor_id
            and events.event_date >= cast(rewritten.changed_from as date)
    {%- endif %}
    where events.customer_id is not null
),

final as (
    select
        customer_id,
        visitor_id,
        event_date as activity_date,
        device_type,
        os_name,
        product_category,
        campaign_name,
        count(*) as n_events,
        count(*) filter (where event_name = 'Page Viewed') as n_page_views,
        count(*) filter (where event_name = 'Product Viewed') as n_product_views,
        count(*) filter (where event_name = 'Products Searched') as n_searches,
        count(*) filter (where event_name = 'Product Added') as n_cart_adds,
        count(*) filter (where event_name = 'Email Opened') as n_email_opens,
        count(*) filter (where event_name = 'Email Link Clicked') as n_email_clicks,
        min(event_at) as first_seen_at,
        max(event_at) as last_seen_at,
        {{ latest_change_id() }} as change_id
    from events
    group by all
)

select * from final
