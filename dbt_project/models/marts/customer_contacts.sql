with

customers as (
    select * from {{ ref('stg_shop__customers') }}
),

final as (
    -- contact details for activation only; never published to the analysts' copy
    select
        customer_id,
        email,
        phone,
        first_name,
        last_name,
        country,
        has_email_consent,
        has_ads_consent
    from customers
    where not is_deleted
)

select * from final
