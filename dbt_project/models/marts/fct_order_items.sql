with

order_lines as (
    select * from {{ ref('stg_shop__order_lines') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
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
        order_lines.order_date

    from order_lines
    inner join orders on order_lines.order_id = orders.order_id
)

select * from final
