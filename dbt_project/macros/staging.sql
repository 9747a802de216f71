{#-
    The columns of `stg_shop__events`, from the raw events aliased `raw_events`: one
    definition for the staging view and for int_events_sessionized's incremental runs, which
    filter the raw rows first (through the view, every event's JSON would be read before a
    join kept a fraction of them).
-#}
{% macro shop_event_columns(raw_events) -%}
        ----------  ids
        {{ raw_events }}.message_id as event_id,
        {{ raw_events }}.user_id as customer_id,
        {{ raw_events }}.anonymous_id,
        {{ raw_events }}.properties ->> '$.product_id' as product_id,
        {{ raw_events }}.properties ->> '$.order_id' as order_id,

        ----------  what happened
        {{ raw_events }}.type as event_type,
        coalesce(
            {{ raw_events }}.event,
            case {{ raw_events }}.type when 'page' then 'Page Viewed' else 'Identify' end
        ) as event_name,
        {{ raw_events }}.properties ->> '$.query' as search_query,
        {{ raw_events }}.properties ->> '$.category' as product_category,
        try_cast({{ raw_events }}.properties ->> '$.price' as decimal(18, 4)) as product_price,

        ----------  context
        lower({{ raw_events }}.context ->> '$.device.type') as device_type,
        {{ raw_events }}.context ->> '$.os.name' as os_name,
        upper({{ raw_events }}.context ->> '$.location.country') as country,
        {{ raw_events }}.context ->> '$.location.city' as city,
        {{ raw_events }}.context ->> '$.campaign.name' as campaign_name,

        ----------  timestamps
        {{ raw_events }}.timestamp as event_at,
        cast({{ raw_events }}.timestamp as date) as event_date,

        ----------  lineage
        {{ raw_events }}._partition_date as landed_on,
        {{ raw_events }}._loaded_at as loaded_at
{%- endmacro %}
