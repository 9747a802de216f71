-- An erasure request in the profiles rewrites order lines and events (core/privacy.py):
-- they are downstream of the profiles too.
-- depends_on: {{ source('shop', 'customers') }}
with

source as (
    select * from {{ source('shop', 'orders') }}
),

renamed as (
    select
        ----------  ids
        order_id || '-' || cast(line_number as {{ dbt.type_string() }}) as order_line_id,
        order_id,
        line_number,
        customer_id,
        product_id,

        ----------  properties
        lower(status) as order_status,
        lower(channel) as channel,
        upper(currency) as currency,
        upper(shipping_country) as shipping_country,

        ----------  numerics
        quantity,
        -- money is exact from here on: sums do not depend on the order rows arrive in
        cast(unit_price as decimal(18, 4)) as unit_price,
        cast(coalesce(discount_amount, 0) as decimal(18, 4)) as discount_amount,

        ----------  timestamps
        ordered_at,
        cast(ordered_at as date) as order_date,

        ----------  lineage
        _partition_date as landed_on,
        _loaded_at as loaded_at

    -- Ingestion loads each (order_id, line_number) once (a key delivered again on another day
    -- is quarantined as duplicate_key), so no de-duplication here.
    from source
),

final as (
    select * from renamed
)

select * from final
