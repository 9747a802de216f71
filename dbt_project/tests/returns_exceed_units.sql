{{ config(severity='warn') }}

-- returns_exceed_units (a warning: the lines load and count): completed orders with more units
-- of a product returned (lines with a negative quantity) than sold in that order. Returns are
-- their own order lines, often delivered days after the sale, so no single landing row is
-- wrong and ingestion cannot quarantine one; the order's net revenue goes negative instead.
-- Fix: correct the return lines (or deliver the missing sale) in the orders feed
-- (docs/data-contract.md, "Checks on the marts").

select
    order_id,
    product_id,
    sum(greatest(quantity, 0)) as units_sold,
    sum(greatest(-quantity, 0)) as units_returned
from {{ ref('fct_order_items') }}
where is_completed
group by order_id, product_id
having sum(greatest(-quantity, 0)) > sum(greatest(quantity, 0))
