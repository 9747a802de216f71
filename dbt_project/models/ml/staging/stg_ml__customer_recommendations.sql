-- The champion recommender's top 10 per customer as dbt reads them (types cast: an empty
-- table written while there is no champion has pandas' types).

with

source as (
    select * from {{ source('ml', 'customer_recommendations') }}
),

renamed as (
    select
        ----------  ids
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(rank as bigint) as rank,
        cast(product_id as {{ dbt.type_string() }}) as product_id,

        ----------  the recommendation
        cast(score as double) as score,
        cast(reason as {{ dbt.type_string() }}) as reason,

        ----------  the model
        cast(model_name as {{ dbt.type_string() }}) as model_name,
        cast(model_version as {{ dbt.type_string() }}) as model_version,
        cast(scored_at as timestamp) as scored_at
    from source
)

select * from renamed
