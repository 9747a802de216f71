with

source as (
    select * from {{ source('shop', 'products') }}
),

latest as (
    -- catalogue snapshots: the newest updated_at wins
    select *
    from (
        select
            *,
            row_number() over (
                partition by product_id
                order by updated_at desc, _partition_date desc, _source_line desc
            ) as _snapshot_rank
        from source
    ) as ranked
    where _snapshot_rank = 1
),

renamed as (
    select
        ----------  ids
        product_id,
        sku,

        ----------  properties
        name as product_name,
        category,
        subcategory,
        brand,
        cast(price as decimal(18, 4)) as price,
        upper(currency) as currency,
        coalesce(is_active, true) as is_active,

        ----------  timestamps
        updated_at

    from latest
),

final as (
    select * from renamed
)

select * from final
