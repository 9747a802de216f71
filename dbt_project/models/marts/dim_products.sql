with

products as (
    select * from {{ ref('stg_shop__products') }}
),

order_items as (
    select * from {{ ref('fct_order_items') }}
),

sales as (
    select
        product_id,
        count(distinct order_id) as n_orders,
        count(distinct customer_id) as n_buyers,
        cast(sum(greatest(quantity, 0)) as bigint) as n_units_sold,
        cast(sum(greatest(-quantity, 0)) as bigint) as n_units_returned,
        -- decimal(38, 2) on both engines (Spark's sum of a decimal(18, 4) is a decimal(28, 4))
        cast(round(sum(case when quantity > 0 then line_amount else 0 end), 2) as decimal(38, 2))
            as gross_revenue,
        min(ordered_at) as first_ordered_at,
        max(ordered_at) as last_ordered_at
    from order_items
    where is_completed
    group by product_id
),

final as (
    select
        ----------  ids
        products.product_id,
        products.sku,

        ----------  properties
        products.product_name,
        products.category,
        products.subcategory,
        products.brand,
        products.price,
        products.currency,
        products.is_active,

        ----------  sales (completed orders)
        coalesce(sales.n_orders, 0) as n_orders,
        coalesce(sales.n_buyers, 0) as n_buyers,
        coalesce(sales.n_units_sold, 0) as n_units_sold,
        coalesce(sales.n_units_returned, 0) as n_units_returned,
        case
            when sales.n_units_sold > 0
                then {{ round_double(
                        'cast(sales.n_units_returned as double) / sales.n_units_sold', 4
                    ) }}
        end as return_rate,
        coalesce(sales.gross_revenue, 0) as gross_revenue,
        sales.first_ordered_at,
        sales.last_ordered_at,

        ----------  timestamps
        products.updated_at

    from products
    left join sales on products.product_id = sales.product_id
)

select * from final
