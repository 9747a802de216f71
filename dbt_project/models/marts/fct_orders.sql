{{ config(
    materialized=incremental_on_duckdb(),
    incremental_strategy='append',
    pre_hook=incremental_hooks("{{ delete_rows_of('order_id', changed_orders()) }}"),
    post_hook=incremental_hooks("{{ record_watermark() }}"),
) }}
-- depends_on: {{ source('shop', 'orders_changes') }}

-- Incremental: the orders logged since the last refresh (a line added, changed or removed on
-- any day, a late refund line) are deleted and recomputed from all their lines.

with

order_lines as (
    select stg.*
    from {{ ref('stg_shop__order_lines') }} as stg
    {%- if is_incremental() %}
        where stg.order_id in ({{ changed_orders() }})
    {%- endif %}
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
        cast(sum(greatest(quantity, 0)) as bigint) as n_units,
        cast(sum(greatest(-quantity, 0)) as bigint) as n_units_returned,
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
        cast(round(gross_revenue, 2) as decimal(18, 2)) as gross_revenue,
        cast(round(discount_amount, 2) as decimal(18, 2)) as discount_amount,
        cast(round(returned_revenue, 2) as decimal(18, 2)) as returned_revenue,
        -- what the store keeps: nothing for cancelled and refunded orders
        cast(case
            when order_status = 'completed'
                then round(gross_revenue - discount_amount - returned_revenue, 2)
            else 0
        end as decimal(18, 2)) as net_revenue,
        last_landed_on,
        {{ latest_change_id() }} as change_id
    from summed
)

select * from final
