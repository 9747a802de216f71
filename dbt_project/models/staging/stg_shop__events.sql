-- An erasure request in the profiles rewrites order lines and events (core/privacy.py):
-- they are downstream of the profiles too.
-- depends_on: {{ source('shop', 'customers') }}
with

source as (
    select * from {{ source('shop', 'events') }}
),

renamed as (
    select
        ----------  ids
        message_id as event_id,
        user_id as customer_id,
        anonymous_id,
        properties ->> '$.product_id' as product_id,
        properties ->> '$.order_id' as order_id,

        ----------  what happened
        type as event_type,
        coalesce(event, case type when 'page' then 'Page Viewed' else 'Identify' end)
            as event_name,
        properties ->> '$.query' as search_query,
        properties ->> '$.category' as product_category,
        try_cast(properties ->> '$.price' as decimal(18, 4)) as product_price,

        ----------  context
        lower(context ->> '$.device.type') as device_type,
        context ->> '$.os.name' as os_name,
        upper(context ->> '$.location.country') as country,
        context ->> '$.location.city' as city,
        context ->> '$.campaign.name' as campaign_name,

        ----------  timestamps
        timestamp as event_at,
        cast(timestamp as date) as event_date,

        ----------  lineage
        _partition_date as landed_on

    -- Ingestion loads each messageId once (a messageId delivered again on another day is
    -- quarantined as duplicate_key), so no de-duplication here.
    from source
),

final as (
    select * from renamed
)

select * from final
