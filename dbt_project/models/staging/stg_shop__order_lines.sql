with

source as (
    select * from {{ source('shop', 'orders') }}
),

deduplicated as (
    -- a line delivered twice counts once: the latest delivery wins
    select *
    from source
    qualify row_number() over (
            partition by order_id, line_number
            order by _partition_date desc, _source_file desc, _source_line desc
        ) = 1
),

renamed as (
    select
        ----------  ids
        order_id || '-' || cast(line_number as varchar) as order_line_id,
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
        unit_price,
        coalesce(discount_amount, 0) as discount_amount,

        ----------  timestamps
        ordered_at,
        cast(ordered_at as date) as order_date,

        ----------  lineage
        _partition_date as landed_on

    from deduplicated
),

final as (
    select * from renamed
)

select * from final
