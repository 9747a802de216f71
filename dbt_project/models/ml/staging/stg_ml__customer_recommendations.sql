-- The champion recommender's top 10 per customer as dbt reads them (types cast: an empty
-- table written while there is no champion has pandas' types).

with

source as (
    select * from {{ source('ml', 'customer_recommendations') }}
),

renamed as (
    select
        ----------  ids
        cast(customer_id as varchar) as customer_id,
        cast(rank as bigint) as rank,
        cast(product_id as varchar) as product_id,

        ----------  the recommendation
        cast(score as double) as score,
        cast(reason as varchar) as reason,

        ----------  the model
        cast(model_name as varchar) as model_name,
        cast(model_version as varchar) as model_version,
        cast(scored_at as timestamp) as scored_at
    from source
)

select * from renamed
