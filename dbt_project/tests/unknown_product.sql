{{ config(
    severity='warn',
    meta={'dagster': {'ref': {'name': 'fct_order_items'}}},
) }}

-- unknown_product (a warning: the order lines load and count): order lines whose product_id
-- is in no catalogue snapshot. The catalogue may arrive after the orders, so this is not a
-- quarantine reason; a product that stays unknown has no name, category or price in the marts.
-- Fix: deliver the product in the products feed (docs/data-contract.md, "Checks on the marts").

select
    items.product_id,
    count(*) as n_order_lines,
    min(items.order_id) as first_order_id,
    min(items.ordered_at) as first_ordered_at
from {{ ref('fct_order_items') }} as items
where not exists (
    select 1 from {{ ref('dim_products') }} as products
    where products.product_id = items.product_id
)
group by items.product_id
