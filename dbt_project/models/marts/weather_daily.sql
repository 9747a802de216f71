{#- What makes a day rainy or hot (generator/weather.py simulates with the same thresholds). -#}
{%- set wet_day_mm = 1.0 -%}
{%- set hot_day_c = 28.0 -%}

with

weather as (
    select * from {{ ref('stg_weather__daily') }}
),

final as (
    select
        ----------  ids
        weather_date,
        city,
        country,

        ----------  the weather
        kind,
        is_observed,
        condition,
        precipitation_mm,
        temp_min_c,
        temp_max_c,

        ----------  flags rules use
        coalesce(
            precipitation_mm >= {{ wet_day_mm }}
            or condition in ('drizzle', 'rain', 'storm'),
            false
        ) as is_rainy,
        coalesce(temp_max_c >= {{ hot_day_c }}, false) as is_hot,

        ----------  timestamps
        issued_at

    from weather
)

select * from final
