-- An erasure request in the profiles rewrites order lines and events (core/privacy.py):
-- they are downstream of the profiles too.
-- depends_on: {{ source('shop', 'customers') }}
with

source as (
    select * from {{ source('shop', 'events') }}
),

renamed as (
    -- the columns are in macros/staging.sql: int_events_sessionized applies them to the raw
    -- rows it needs on an incremental run
    select
        {{ shop_event_columns('source') }}

    -- Ingestion loads each messageId once (a messageId delivered again on another day is
    -- quarantined as duplicate_key), so no de-duplication here.
    from source
),

final as (
    -- every column but the two JSON field lists
    select
        event_id,
        customer_id,
        anonymous_id,
        product_id,
        order_id,
        event_type,
        event_name,
        search_query,
        product_category,
        product_price,
        device_type,
        os_name,
        country,
        city,
        campaign_name,
        event_at,
        event_date,
        landed_on,
        loaded_at
    from renamed
)

select * from final
