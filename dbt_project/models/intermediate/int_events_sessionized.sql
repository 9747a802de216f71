{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='event_id',
    pre_hook="{{ clear_partition_window('landed_on') }}",
) }}
-- depends_on: {{ ref('int_device_identities') }}

{#- How far back a device's anonymous events are re-attributed when it identifies. -#}
{%- set identity_lookback_days = var('identity_lookback_days', 30) %}

with

batch_events as (
    -- the load days of this run; every day on a full build
    select * from {{ ref('stg_shop__events') }}
    where {{ partition_window('landed_on') }}
),

batch_bounds as (
    -- the earliest load day of this run (the incremental lookups reach back from it)
    select min(landed_on) as first_landed_on from batch_events
),

identities as (
    -- a device (anonymousId) belongs to the customer it was last identified as
    {%- if is_incremental() %}
        select
            anonymous_id,
            customer_id
        from {{ ref('int_device_identities') }}
    {%- else %}
        select
            anonymous_id,
            customer_id
        from batch_events
        where customer_id is not null and anonymous_id is not null
        qualify row_number() over (
                partition by anonymous_id order by event_at desc, event_id desc
            ) = 1
    {%- endif %}
),

visitor_events as (
    select
        batch_events.*,
        coalesce(batch_events.customer_id, identities.customer_id) as resolved_customer_id,
        coalesce(batch_events.anonymous_id, 'user:' || batch_events.customer_id) as visitor_id
    from batch_events
    left join identities on batch_events.anonymous_id = identities.anonymous_id
),

web_events as (
    -- email opens and clicks happen in the inbox, not in a visit: they get no session
    select * from visitor_events where event_name not like 'Email%'
),

previous_event as (
    -- each visitor's last event before this batch (looking one day back): a visit that
    -- crosses midnight keeps its session
    {%- if is_incremental() %}
        select
            visitor_id,
            session_id,
            event_at
        from {{ this }}
        where
            session_id is not null
            and event_date >= {{ dbt.dateadd(
                'day', -1, '(select batch_bounds.first_landed_on from batch_bounds)') }}
            and landed_on < (select batch_bounds.first_landed_on from batch_bounds)
            and visitor_id in (select web_events.visitor_id from web_events)
        qualify row_number() over (
                partition by visitor_id order by event_at desc, event_id desc
            ) = 1
    {%- else %}
        -- a full build has no earlier batch
        select
            cast(null as varchar) as visitor_id,
            cast(null as varchar) as session_id,
            cast(null as timestamp) as event_at
        from batch_bounds
        where 1 = 0
    {%- endif %}
),

with_previous as (
    select
        web_events.*,
        previous_event.session_id as previous_session_id,
        coalesce(
            lag(web_events.event_at) over (
                partition by web_events.visitor_id order by web_events.event_at, web_events.event_id
            ),
            previous_event.event_at
        ) as previous_event_at
    from web_events
    left join previous_event on web_events.visitor_id = previous_event.visitor_id
),

gaps as (
    select
        *,
        -- a new session starts after 30 minutes without an event from the same visitor
        coalesce(
            {{ dbt.datediff("previous_event_at", "event_at", "minute") }} > 30, true
        ) as is_session_start
    from with_previous
),

numbered as (
    select
        *,
        -- 0: the visit continues the session of the previous batch
        sum(case when is_session_start then 1 else 0 end) over (
            partition by visitor_id order by event_at, event_id rows unbounded preceding
        ) as session_seq
    from gaps
),

first_events as (
    select
        *,
        first_value(event_id) over (
            partition by visitor_id, session_seq order by event_at, event_id
        ) as first_event_id
    from numbered
),

sessionized as (
    select
        *,
        -- a session is named after its visitor and its first event: stable across runs
        case
            when session_seq = 0 then previous_session_id
            else visitor_id || '-' || first_event_id
        end as session_id
    from first_events
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
                   'country', 'event_at', 'event_date', 'landed_on'] %}

batch as (
    {%- for relation in ['sessionized', 'email_events'] %}
        select
            {%- for column in columns %}
                {{ column }},
            {%- endfor %}
            resolved_customer_id as customer_id
        from {{ relation }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

restitched as (
    -- a device identified in this batch: its earlier anonymous events now belong to the customer
    {%- if is_incremental() %}
        select
            {%- for column in columns %}
                earlier.{{ column }},
            {%- endfor %}
            identities.customer_id
        from {{ this }} as earlier
        inner join identities on earlier.visitor_id = identities.anonymous_id
        where
            earlier.customer_id is null
            and earlier.landed_on < (select batch_bounds.first_landed_on from batch_bounds)
            and earlier.event_date >= {{ dbt.dateadd(
                'day', -identity_lookback_days,
                '(select batch_bounds.first_landed_on from batch_bounds)') }}
            and earlier.visitor_id in (
                select batch_events.anonymous_id from batch_events
                where batch_events.customer_id is not null
            )
    {%- else %}
        select * from batch where 1 = 0
    {%- endif %}
),

final as (
    select
        *,
        {{ refreshed_at() }} as refreshed_at
    from (
        select * from batch
        union all
        select * from restitched
    ) as events
)

select * from final
