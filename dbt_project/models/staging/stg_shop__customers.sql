with

source as (
    select * from {{ source('shop', 'customers') }}
),

latest as (
    -- profile snapshots: the newest updated_at wins
    select *
    from (
        select
            *,
            row_number() over (
                partition by customer_id
                order by updated_at desc, _partition_date desc, _source_line desc
            ) as _snapshot_rank
        from source
    ) as ranked
    where _snapshot_rank = 1
),

renamed as (
    select
        ----------  ids
        customer_id,

        ----------  contact (PII)
        lower(trim(email)) as email,
        phone,
        first_name,
        last_name,

        ----------  demographics and geography
        birth_date,
        nullif(lower(gender), '') as gender,
        city,
        region,
        postal_code,
        upper(country) as country,
        -- one of the five bands (low, lower_middle, middle, upper_middle, high), however
        -- written ('Upper-Middle'); anything else is unknown here (tests/unknown_income_band)
        case
            when
                {{ regexp_replace_all('lower(trim(income_band))', "'[ -]+'", "'_'") }}
                in ('low', 'lower_middle', 'middle', 'upper_middle', 'high')
                then {{ regexp_replace_all('lower(trim(income_band))', "'[ -]+'", "'_'") }}
        end as income_band,

        ----------  consents and flags
        email_consent as has_email_consent,
        ads_consent as has_ads_consent,
        coalesce(is_deleted, false) as is_deleted,

        ----------  timestamps
        signup_at,
        updated_at

    from latest
),

final as (
    select * from renamed
)

select * from final
