{{ config(
    materialized=incremental_on_duckdb(),
    incremental_strategy='append',
    pre_hook=incremental_hooks(["{{ create_activity_customers_changed() }}",
                                "{{ delete_rows_of('customer_id', customers_resummed()) }}"]),
    post_hook=incremental_hooks(["{{ record_watermark() }}",
                                 "{{ prune_activity_customers_changed() }}"]),
) }}

-- Each identified customer's events over all history: main device and OS, events, first and
-- last seen. Incremental by customer: the customers whose activity rows were written or
-- deleted since the last refresh are summed again from all their activity (at 1M customers
-- a day changes about one in twenty; the whole table took 7 s to rebuild).

with

{%- if is_incremental() %}

resummed as (
    {{ customers_resummed() }}
),

{%- endif %}

by_device as (
    -- one pass over the activity: per customer, device type and OS (a customer's totals are
    -- summed from these few rows, not from the activity again)
    select
        activity.customer_id,
        activity.device_type,
        activity.os_name,
        cast(sum(activity.n_events) as bigint) as n_events,
        min(activity.first_seen_at) as first_seen_at,
        max(activity.last_seen_at) as last_seen_at
    from {{ ref('int_customer_activity_daily') }} as activity
    {%- if is_incremental() %}
        where activity.customer_id in (select resummed.customer_id from resummed)
    {%- endif %}
    group by activity.customer_id, activity.device_type, activity.os_name
),

main_device as (
    -- the device and OS the customer uses most; ties go to the alphabetically first
    select
        customer_id,
        device_type as main_device,
        os_name as main_os
    from (
        select
            *,
            row_number() over (
                partition by customer_id order by n_events desc, device_type asc, os_name asc
            ) as _device_rank
        from by_device
        where device_type is not null
    ) as ranked
    where _device_rank = 1
),

totals as (
    select
        customer_id,
        cast(sum(n_events) as bigint) as n_events,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from by_device
    group by customer_id
),

final as (
    select
        totals.customer_id,
        main_device.main_device,
        main_device.main_os,
        totals.n_events,
        totals.first_seen_at,
        totals.last_seen_at,
        {{ latest_change_id() }} as change_id
    from totals
    left join main_device on totals.customer_id = main_device.customer_id
)

select * from final
