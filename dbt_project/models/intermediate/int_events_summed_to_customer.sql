{#- read where used: a `select *` CTE named twice is materialized whole by DuckDB -#}
{%- set activity = ref('int_customer_activity_daily') %}

with

device_counts as (
    select
        customer_id,
        device_type,
        os_name,
        cast(sum(n_events) as bigint) as n_events
    from {{ activity }}
    where device_type is not null
    group by customer_id, device_type, os_name
),

main_device as (
    -- the device and OS the customer uses most; ties go to the alphabetically first
    select
        customer_id,
        device_type as main_device,
        os_name as main_os
    from device_counts
    qualify row_number() over (
            partition by customer_id order by n_events desc, device_type asc, os_name asc
        ) = 1
),

totals as (
    select
        customer_id,
        cast(sum(n_events) as bigint) as n_events,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from {{ activity }}
    group by customer_id
),

final as (
    select
        totals.customer_id,
        main_device.main_device,
        main_device.main_os,
        totals.n_events,
        totals.first_seen_at,
        totals.last_seen_at
    from totals
    left join main_device on totals.customer_id = main_device.customer_id
)

select * from final
