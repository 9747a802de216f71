-- The rule segments' members (segments/rules.yml, written by the Dagster asset) as dbt reads
-- them.

with

source as (
    select * from {{ source('segments', 'rule_segment_memberships') }}
),

renamed as (
    select
        ----------  ids
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(segment_key as {{ dbt.type_string() }}) as segment_key,

        ----------  the segment
        cast(segment_name as {{ dbt.type_string() }}) as segment_name,
        cast(segment_kind as {{ dbt.type_string() }}) as segment_kind
    from source
)

select * from renamed
