{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='order_id',
) }}

with

touched_orders as (
    -- orders with a line in this run's load days (a late refund line re-opens its order)
    select distinct order_id
    from {{ ref('stg_shop__order_lines') }}
    where {{ partition_window('landed_on', 'last_landed_on') }}
),

order_lines as (
    select stg.*
    from {{ ref('stg_shop__order_lines') }} as stg
    inner join touched_orders on stg.order_id = touched_orders.order_id
),

summed as (
    select
        order_id,
        min(customer_id) as customer_id,
        min(ordered_at) as ordered_at,
        -- one refunded or cancelled line marks the whole order
        case
            when max(case when order_status = 'refunded' then 1 else 0 end) = 1 then 'refunded'
            when max(case when order_status = 'cancelled' then 1 else 0 end) = 1 then 'cancelled'
            else 'completed'
        end as order_status,
        min(channel) as channel,
        min(currency) as currency,
        min(shipping_country) as shipping_country,
        count(*) as n_lines,
        sum(greatest(quantity, 0)) as n_units,
        sum(greatest(-quantity, 0)) as n_units_returned,
        sum(case when quantity > 0 then quantity * unit_price else 0 end) as gross_revenue,
        sum(case when quantity < 0 then -quantity * unit_price else 0 end) as returned_revenue,
        sum(discount_amount) as discount_amount,
        max(landed_on) as last_landed_on
    from order_lines
    group by order_id
),

final as (
    select
        order_id,
        nullif(customer_id, '') as customer_id,
        ordered_at,
        cast(ordered_at as date) as order_date,
        order_status,
        order_status = 'completed' as is_completed,
        customer_id is null or customer_id = '' as is_guest_checkout,
        channel,
        currency,
        shipping_country,
        n_lines,
        n_units,
        n_units_returned,
        round(gross_revenue, 2) as gross_revenue,
        round(discount_amount, 2) as discount_amount,
        round(returned_revenue, 2) as returned_revenue,
        -- what the store keeps: nothing for cancelled and refunded orders
        case
            when order_status = 'completed'
                then round(gross_revenue - discount_amount - returned_revenue, 2)
            else 0
        end as net_revenue,
        last_landed_on,
        {{ refreshed_at() }} as refreshed_at
    from summed
)

select * from final
