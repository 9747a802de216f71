{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['customer_id', 'activity_date'],
) }}

-- A customer's events summed per day, device, OS, product category and email campaign: the
-- compact input of every customer-level behaviour metric. Incremental: a run recomputes only
-- the (customer, day) pairs that received events since the last refresh, so its work follows
-- the day's data, not the history.

with

events as (
    select * from {{ ref('int_events_sessionized') }} where customer_id is not null
),

touched as (
    select distinct
        customer_id,
        event_date
    from events
    where {{ written_since_last_refresh() }}
),

touched_events as (
    select events.*
    from events
    inner join touched
        on events.customer_id = touched.customer_id and events.event_date = touched.event_date
    -- lets the engine skip the row groups of older days
    where events.event_date >= (select min(earliest.event_date) from touched as earliest)
),

final as (
    select
        customer_id,
        event_date as activity_date,
        device_type,
        os_name,
        product_category,
        campaign_name,
        count(*) as n_events,
        sum(case when event_name = 'Page Viewed' then 1 else 0 end) as n_page_views,
        sum(case when event_name = 'Product Viewed' then 1 else 0 end) as n_product_views,
        sum(case when event_name = 'Products Searched' then 1 else 0 end) as n_searches,
        sum(case when event_name = 'Product Added' then 1 else 0 end) as n_cart_adds,
        sum(case when event_name = 'Email Opened' then 1 else 0 end) as n_email_opens,
        sum(case when event_name = 'Email Link Clicked' then 1 else 0 end) as n_email_clicks,
        min(event_at) as first_seen_at,
        max(event_at) as last_seen_at,
        {{ refreshed_at() }} as refreshed_at
    from touched_events
    group by customer_id, event_date, device_type, os_name, product_category, campaign_name
)

select * from final
