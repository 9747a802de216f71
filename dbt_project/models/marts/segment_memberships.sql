with

customers as (
    select * from {{ ref('dim_customers') }}
),

rfm as (
    select * from {{ ref('customer_rfm') }}
),

rules as (
    select * from {{ source('segments', 'rule_segment_memberships') }}
),

clusters as (
    select * from {{ source('ml', 'customer_clusters') }}
),

as_of as (
    select {{ rfm_as_of_date(ref('fct_orders')) }} as as_of_date
),

unioned as (
    select
        customer_id,
        'rfm_' || {{ segment_slug('rfm_segment') }} as segment_key,
        rfm_segment as segment_name,
        'rfm' as segment_type
    from rfm

    union all

    select
        customer_id,
        segment_key,
        segment_name,
        'rule' as segment_type
    from rules

    union all

    select
        customer_id,
        'ml_' || {{ segment_slug('cluster_name') }} as segment_key,
        cluster_name as segment_name,
        'ml' as segment_type
    from clusters
),

final as (
    select
        unioned.customer_id,
        unioned.segment_key,
        unioned.segment_name,
        unioned.segment_type,
        as_of.as_of_date
    from unioned
    inner join customers on unioned.customer_id = customers.customer_id
    cross join as_of
)

select * from final
