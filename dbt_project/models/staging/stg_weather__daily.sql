with

source as (
    select * from {{ source('shop', 'weather') }}
),

latest as (
    -- a city's day is forecast, forecast again, then observed: an observation wins over any
    -- forecast (also one issued later), then the newest issue
    select *
    from (
        select
            *,
            row_number() over (
                partition by date, lower(trim(city)), upper(country)
                order by
                    lower(kind) = 'observed' desc,
                    issued_at desc,
                    _partition_date desc,
                    _source_line desc
            ) as _issue_rank
        from source
    ) as ranked
    where _issue_rank = 1
),

renamed as (
    select
        ----------  ids
        date as weather_date,
        trim(city) as city,
        upper(country) as country,

        ----------  properties
        lower(kind) as kind,
        lower(kind) = 'observed' as is_observed,
        lower(condition) as condition,
        precipitation_mm,
        temp_min_c,
        temp_max_c,

        ----------  timestamps
        issued_at

    from latest
),

final as (
    select * from renamed
)

select * from final
