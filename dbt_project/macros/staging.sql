{#-
    The columns of `stg_shop__events`, from the raw events aliased `raw_events`: one
    definition for the staging view and for int_events_sessionized's incremental runs, which
    filter the raw rows first (through the view, every event's JSON would be read before a
    join kept a fraction of them).
-#}
{% macro shop_event_columns(raw_events) -%}
        ----------  the JSON fields: on DuckDB each document parsed once for all its fields,
        ----------  which the columns below take by position (macros/portable/json.sql). The
        ----------  two lists are columns too: the staging view leaves them out.
        {{ json_text_fields(
            raw_events ~ '.properties',
            ['product_id', 'order_id', 'query', 'category', 'price']
        ) }} as _properties_fields,
        {{ json_text_fields(
            raw_events ~ '.context',
            ['device.type', 'os.name', 'location.country', 'location.city', 'campaign.name']
        ) }} as _context_fields,

        ----------  ids
        {{ raw_events }}.message_id as event_id,
        {{ raw_events }}.user_id as customer_id,
        {{ raw_events }}.anonymous_id,
        {{ array_item('_properties_fields', 1) }} as product_id,
        {{ array_item('_properties_fields', 2) }} as order_id,

        ----------  what happened
        {{ raw_events }}.type as event_type,
        coalesce(
            {{ raw_events }}.event,
            case {{ raw_events }}.type when 'page' then 'Page Viewed' else 'Identify' end
        ) as event_name,
        {{ array_item('_properties_fields', 3) }} as search_query,
        {{ array_item('_properties_fields', 4) }} as product_category,
        try_cast({{ array_item('_properties_fields', 5) }} as decimal(18, 4)) as product_price,

        ----------  context
        lower({{ array_item('_context_fields', 1) }}) as device_type,
        {{ array_item('_context_fields', 2) }} as os_name,
        upper({{ array_item('_context_fields', 3) }}) as country,
        {{ array_item('_context_fields', 4) }} as city,
        {{ array_item('_context_fields', 5) }} as campaign_name,

        ----------  timestamps
        {{ raw_events }}.timestamp as event_at,
        cast({{ raw_events }}.timestamp as date) as event_date,

        ----------  lineage
        {{ raw_events }}._partition_date as landed_on,
        {{ raw_events }}._loaded_at as loaded_at
{%- endmacro %}
