{{ config(
    materialized=incremental_on_duckdb(),
    incremental_strategy='append',
    pre_hook=incremental_hooks("{{ delete_rows_of('order_id', changed_orders()) }}"),
    post_hook=incremental_hooks("{{ record_watermark() }}"),
) }}
-- depends_on: {{ source('shop', 'orders_changes') }}

-- Incremental: the lines of the orders logged since the last refresh are deleted and
-- recomputed (a removed line disappears, the others get their order's new outcome).

with

order_lines as (
    select stg.*
    from {{ ref('stg_shop__order_lines') }} as stg
    {%- if is_incremental() %}
        where stg.order_id in ({{ changed_orders() }})
    {%- endif %}
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
        cast(order_lines.quantity * order_lines.unit_price as decimal(18, 4)) as line_amount,
        order_lines.quantity < 0 as is_return,

        ----------  timestamps
        order_lines.ordered_at,
        order_lines.order_date,

        {{ latest_change_id() }} as change_id

    from order_lines
    inner join orders on order_lines.order_id = orders.order_id
)

select * from final
