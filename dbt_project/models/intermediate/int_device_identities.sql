{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='anonymous_id',
) }}

-- One row per device (Segment anonymousId) that has identified: the customer it was last
-- identified as. Incremental: a run reads only its load days and keeps a newer identification.

with

batch_events as (
    select * from {{ ref('stg_shop__events') }}
    where {{ partition_window('landed_on', 'last_landed_on') }}
),

batch_identities as (
    select
        anonymous_id,
        customer_id,
        event_at as identified_at,
        landed_on as last_landed_on
    from batch_events
    where customer_id is not null and anonymous_id is not null
    qualify row_number() over (
            partition by anonymous_id order by event_at desc, event_id desc
        ) = 1
),

known as (
    -- identifications of earlier runs
    {%- if is_incremental() %}
        select
            anonymous_id,
            identified_at
        from {{ this }}
    {%- else %}
        select
            cast(null as varchar) as anonymous_id,
            cast(null as timestamp) as identified_at
        where 1 = 0
    {%- endif %}
),

final as (
    select
        batch_identities.*,
        {{ refreshed_at() }} as refreshed_at
    from batch_identities
    left join known on batch_identities.anonymous_id = known.anonymous_id
    -- a late file must not undo a newer identification
    where known.anonymous_id is null or known.identified_at <= batch_identities.identified_at
)

select * from final
