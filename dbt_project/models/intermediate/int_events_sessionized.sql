{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_sessionized_from_restart_points() }}",
    post_hook="{{ record_watermark() }}",
) }}
-- depends_on: {{ source('shop', 'events_changes') }}

{#-
    One definition for a full build and every incremental run: a visitor's web/app events more
    than 30 minutes apart start a new session; an anonymous event belongs to the customer its
    device was last identified as (over all history). Incremental: the pre-hook deleted each
    changed visitor's events from its restart point (a session start); they are sessionized
    again here from that point on, from the visitor's events in staging.
#}

with

{%- if is_incremental() %}

changed as (
    {{ changed_visitors() }}
),

kept as (
    -- what the pre-hook left of each changed visitor: everything before its restart point
    select
        changed.visitor_id,
        max(earlier.event_at) as kept_until
    from changed
    left join {{ this }} as earlier on changed.visitor_id = earlier.visitor_id
    group by changed.visitor_id
),

{%- endif %}

events as (
    select
        stg.*,
        {{ visitor_id('stg.anonymous_id', 'stg.customer_id') }} as visitor_id
    from {{ ref('stg_shop__events') }} as stg
),

batch_events as (
    -- every event on a full build; the changed visitors' events from their restart on
    {%- if is_incremental() %}
        select events.*
        from events
        inner join kept on events.visitor_id = kept.visitor_id
        where kept.kept_until is null or events.event_at > kept.kept_until
    {%- else %}
        select * from events
    {%- endif %}
),

visitor_events as (
    select
        batch_events.*,
        batch_events.customer_id is not null as is_identified,
        coalesce(batch_events.customer_id, identities.customer_id) as resolved_customer_id
    from batch_events
    left join {{ ref('int_device_identities') }} as identities
        on batch_events.anonymous_id = identities.anonymous_id
),

web_events as (
    -- email opens and clicks happen in the inbox, not in a visit: they get no session
    select * from visitor_events where event_name not like 'Email%'
),

gaps as (
    select
        *,
        -- a new session starts after 30 minutes without an event from the same visitor
        coalesce(
            {{ dbt.datediff(
                "lag(event_at) over (partition by visitor_id order by event_at, event_id)",
                "event_at", "minute") }} > 30,
            true
        ) as is_session_start
    from web_events
),

sessionized as (
    select
        *,
        -- a session is named after its visitor and its first event: stable across runs. The
        -- latest session start up to each event, in the order `gaps` sorted by, so both
        -- windows share one sort of the events (a third, per session, cost a third more).
        visitor_id || '-' || last_value(
            case when is_session_start then event_id end ignore nulls
        ) over (
            partition by visitor_id order by event_at, event_id rows unbounded preceding
        ) as session_id
    from gaps
),

email_events as (
    select
        *,
        cast(null as varchar) as session_id
    from visitor_events
    where event_name like 'Email%'
),

{%- set columns = ['event_id', 'session_id', 'visitor_id', 'event_type', 'event_name', 'product_id',
                   'product_category', 'order_id', 'campaign_name', 'device_type', 'os_name',
                   'country', 'event_at', 'event_date', 'landed_on', 'is_identified'] %}

final as (
    {%- for relation in ['sessionized', 'email_events'] %}
        select
            {%- for column in columns %}
                {{ column }},
            {%- endfor %}
            resolved_customer_id as customer_id,
            {{ latest_change_id() }} as change_id
        from {{ relation }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
)

select * from final
