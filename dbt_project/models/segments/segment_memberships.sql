with

customers as (
    select * from {{ ref('dim_customers') }}
),

rfm as (
    select * from {{ ref('customer_rfm') }}
),

rules as (
    select * from {{ ref('stg_segments__rule_segment_memberships') }}
),

clusters as (
    select * from {{ ref('stg_ml__customer_clusters') }}
),

lifetime_value as (
    select
        clv.*,
        percent_rank() over (order by clv.expected_value_90d) as predicted_value_rank,
        percent_rank() over (order by customers.net_revenue) as past_value_rank
    from {{ ref('stg_ml__customer_clv') }} as clv
    inner join {{ ref('dim_customers') }} as customers on clv.customer_id = customers.customer_id
),

predictive as (
    -- segments from the lifetime-value model (thresholds: vars in dbt_project.yml)
    select
        customer_id,
        'predictive_high_value_likely_to_churn' as segment_key,
        'High value, likely to churn' as segment_name
    from lifetime_value
    where
        past_value_rank >= {{ var('high_value_rank') }}
        and n_repeat_purchases > 0
        and probability_alive < {{ var('churn_probability_alive_below') }}

    union all

    select
        customer_id,
        'predictive_rising_stars' as segment_key,
        'Rising stars' as segment_name
    from lifetime_value
    where
        tenure_weeks <= {{ var('rising_star_max_tenure_weeks') }}
        and predicted_value_rank >= {{ var('high_value_rank') }}

    union all

    select
        customer_id,
        'predictive_top_predicted_value' as segment_key,
        'Top predicted value' as segment_name
    from lifetime_value
    where predicted_value_rank >= {{ var('top_predicted_value_rank') }}

    union all

    select
        customer_id,
        'predictive_likely_lost' as segment_key,
        'Likely lost' as segment_name
    from lifetime_value
    where n_repeat_purchases > 0 and probability_alive < {{ var('lost_probability_alive_below') }}
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
        -- the cluster key survives retrains; the name may be refined
        'ml_cluster_' || cast(cluster_key as {{ dbt.type_string() }}) as segment_key,
        cluster_name as segment_name,
        'ml' as segment_type
    from clusters

    union all

    select
        customer_id,
        segment_key,
        segment_name,
        'predictive' as segment_type
    from predictive
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
