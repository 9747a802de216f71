-- The champion segmenter's clusters as dbt reads them: the types cast here, so the segment
-- marts' contracts do not depend on how pandas typed an empty table (no champion yet).

with

source as (
    select * from {{ source('ml', 'customer_clusters') }}
),

renamed as (
    select
        ----------  ids
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(cluster_key as bigint) as cluster_key,

        ----------  the cluster
        cast(cluster_name as {{ dbt.type_string() }}) as cluster_name,

        ----------  the model
        cast(model_name as {{ dbt.type_string() }}) as model_name,
        cast(model_version as {{ dbt.type_string() }}) as model_version,
        cast(scored_at as timestamp) as scored_at
    from source
)

select * from renamed
