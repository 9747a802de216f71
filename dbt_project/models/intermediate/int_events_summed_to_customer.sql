with

events as (
    select * from {{ ref('stg_shop__events') }}
),

identified as (
    select * from events where customer_id is not null
),

device_counts as (
    select
        customer_id,
        device_type,
        os_name,
        count(*) as n_events
    from identified
    where device_type is not null
    group by all
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

activity as (
    select
        customer_id,
        count(*) as n_events,
        min(event_at) as first_seen_at,
        max(event_at) as last_seen_at
    from identified
    group by customer_id
),

final as (
    select
        activity.customer_id,
        main_device.main_device,
        main_device.main_os,
        activity.n_events,
        activity.first_seen_at,
        activity.last_seen_at
    from activity
    left join main_device on activity.customer_id = main_device.customer_id
)

select * from final
