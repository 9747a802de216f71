-- The rule segments' members (segments/rules.yml, written by the Dagster asset) as dbt reads
-- them.

with

source as (
    select * from {{ source('segments', 'rule_segment_memberships') }}
),

renamed as (
    select
        ----------  ids
        cast(customer_id as varchar) as customer_id,
        cast(segment_key as varchar) as segment_key,

        ----------  the segment
        cast(segment_name as varchar) as segment_name,
        cast(segment_kind as varchar) as segment_kind
    from source
)

select * from renamed
