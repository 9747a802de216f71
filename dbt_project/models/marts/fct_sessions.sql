with

events as (
    select * from {{ ref('int_events_sessionized') }}
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
        mode(country) as country
    from events
    group by session_id
)

select * from final
