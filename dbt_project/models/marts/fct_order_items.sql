{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='order_line_id',
) }}

with

orders as (
    -- orders rebuilt since this table's last refresh (all on a full build)
    select * from {{ ref('fct_orders') }}
    where {{ written_since_last_refresh() }}
),

order_lines as (
    select stg.*
    from {{ ref('stg_shop__order_lines') }} as stg
    inner join orders on stg.order_id = orders.order_id
),

final as (
    select
        ----------  ids
        order_lines.order_line_id,
        order_lines.order_id,
        order_lines.line_number,
        nullif(order_lines.customer_id, '') as customer_id,
        order_lines.product_id,

        ----------  the order's outcome (one refunded or cancelled line marks the whole order)
        orders.order_status,
        orders.is_completed,

        ----------  numerics
        order_lines.quantity,
        order_lines.unit_price,
        order_lines.discount_amount,
        order_lines.quantity * order_lines.unit_price as line_amount,
        order_lines.quantity < 0 as is_return,

        ----------  timestamps
        order_lines.ordered_at,
        order_lines.order_date,

        {{ refreshed_at() }} as refreshed_at

    from order_lines
    inner join orders on order_lines.order_id = orders.order_id
)

select * from final
