with

by_device as (
    -- one pass over the activity: per customer, device type and OS (a customer's totals are
    -- summed from these few rows, not from the activity again)
    select
        customer_id,
        device_type,
        os_name,
        cast(sum(n_events) as bigint) as n_events,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from {{ ref('int_customer_activity_daily') }}
    group by customer_id, device_type, os_name
),

main_device as (
    -- the device and OS the customer uses most; ties go to the alphabetically first
    select
        customer_id,
        device_type as main_device,
        os_name as main_os
    from by_device
    where device_type is not null
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
        totals.last_seen_at
    from totals
    left join main_device on totals.customer_id = main_device.customer_id
)

select * from final
