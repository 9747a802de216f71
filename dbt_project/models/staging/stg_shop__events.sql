with

source as (
    select * from {{ source('shop', 'events') }}
),

deduplicated as (
    -- collectors deliver at least once: one row per messageId
    select *
    from source
    qualify row_number() over (
            partition by message_id
            order by _partition_date, _source_file, _source_line
        ) = 1
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
        try_cast(properties ->> '$.price' as double) as product_price,

        ----------  context
        lower(context ->> '$.device.type') as device_type,
        context ->> '$.os.name' as os_name,
        upper(context ->> '$.location.country') as country,
        context ->> '$.location.city' as city,
        context ->> '$.campaign.name' as campaign_name,

        ----------  timestamps
        timestamp as event_at,
        cast(timestamp as date) as event_date

    from deduplicated
),

final as (
    select * from renamed
)

select * from final
