-- The champion lifetime-value model's scores as dbt reads them (types cast: an empty table
-- written while there is no champion has pandas' types).

with

source as (
    select * from {{ source('ml', 'customer_clv') }}
),

renamed as (
    select
        ----------  ids
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,

        ----------  the buyer's history (weeks)
        cast(as_of_date as date) as as_of_date,
        cast(n_repeat_purchases as bigint) as n_repeat_purchases,
        cast(recency_weeks as double) as recency_weeks,
        cast(tenure_weeks as double) as tenure_weeks,
        cast(avg_repeat_spend as double) as avg_repeat_spend,

        ----------  predictions
        cast(probability_alive as double) as probability_alive,
        cast(expected_purchases_90d as double) as expected_purchases_90d,
        cast(expected_spend_per_purchase as double) as expected_spend_per_purchase,
        cast(expected_value_90d as double) as expected_value_90d,

        ----------  the model
        cast(model_name as {{ dbt.type_string() }}) as model_name,
        cast(model_version as {{ dbt.type_string() }}) as model_version,
        cast(scored_at as timestamp) as scored_at
    from source
)

select * from renamed
