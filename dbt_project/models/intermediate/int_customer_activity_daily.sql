{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_activity_from_changed_days() }}",
    post_hook="{{ record_watermark() }}",
) }}
-- depends_on: {{ source('shop', 'events_changes') }}

-- A customer's events summed per visitor (device), day, device type, OS, product category and
-- email campaign: the compact input of every customer-level behaviour metric. Incremental: the
-- pre-hook deleted each rewritten visitor's days from its earliest change on; they are summed
-- again here, so the work follows what changed, not the history.

with

{%- if is_incremental() %}

rewritten as (
    {{ visitors_rewritten() }}
),

kept as (
    select
        rewritten.visitor_id,
        max(earlier.activity_date) as kept_until
    from rewritten
    left join {{ this }} as earlier on rewritten.visitor_id = earlier.visitor_id
    group by rewritten.visitor_id
),

{%- endif %}

events as (
    select events.*
    from {{ ref('int_events_sessionized') }} as events
    {%- if is_incremental() %}
        inner join kept on events.visitor_id = kept.visitor_id
    {%- endif %}
    where
        events.customer_id is not null  -- noqa: LT02
        {%- if is_incremental() %}
            and (kept.kept_until is null or events.event_date > kept.kept_until)
        {%- endif %}
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
