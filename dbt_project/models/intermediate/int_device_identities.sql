{{ config(
    materialized=incremental_on_duckdb(),
    incremental_strategy='append',
    pre_hook=incremental_hooks("{{ delete_rows_of('anonymous_id', changed_devices()) }}"),
    post_hook=incremental_hooks("{{ record_watermark() }}"),
) }}
-- depends_on: {{ source('shop', 'events_changes') }}

-- One row per device (Segment anonymousId) that has identified: the customer of its latest
-- identifying event over all history. Incremental: the devices with an identifying event
-- logged since the last refresh (added or removed) are recomputed from all their events, so
-- a late file cannot undo a newer identification and a removed one is forgotten.

with

identifying_events as (
    select
        stg.anonymous_id,
        stg.customer_id,
        stg.event_at,
        stg.event_id
    from {{ ref('stg_shop__events') }} as stg
    where
        stg.customer_id is not null and stg.anonymous_id is not null  -- noqa: LT02
        {%- if is_incremental() %}
            and stg.anonymous_id in ({{ changed_devices() }})
        {%- endif %}
),

latest as (
    -- the device's latest identifying event
    select
        *,
        row_number() over (
            partition by anonymous_id order by event_at desc, event_id desc
        ) as _identify_rank
    from identifying_events
),

final as (
    select
        anonymous_id,
        customer_id,
        event_at as identified_at,
        {{ latest_change_id() }} as change_id
    from latest
    where _identify_rank = 1
)

select * from final
