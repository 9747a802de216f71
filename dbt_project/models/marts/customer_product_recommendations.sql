with

recommendations as (
    select * from {{ source('ml', 'customer_recommendations') }}
),

products as (
    select * from {{ ref('dim_products') }}
),

customers as (
    select * from {{ ref('dim_customers') }}
),

final as (
    select
        recommendations.customer_id,
        recommendations.rank,
        recommendations.product_id,
        products.product_name,
        products.category,
        products.subcategory,
        products.price,
        products.currency,
        recommendations.score,
        recommendations.reason,
        recommendations.model_name,
        recommendations.model_version
    from recommendations
    -- a product missing from the catalogue (a store that exports only orders, such as
    -- Online Retail) is still recommended, without its name and price; the warning checks
    -- unknown_product and this mart's relationships test say which
    left join products on recommendations.product_id = products.product_id
    inner join customers on recommendations.customer_id = customers.customer_id
    where not customers.is_deleted
)

select * from final
