{%- set windows = [7, 30, 90] -%}
{#- Read where used, not through `select *` CTEs: DuckDB materializes a CTE used more than once
    with every column (at 1M customers, 38M activity rows held whole). -#}
{%- set activity = ref('int_customer_activity_daily') -%}
{%- set orders = ref('fct_orders') -%}

with

customers as (
    select customer_id from {{ ref('dim_customers') }}
),

as_of as (
    select {{ rfm_as_of_date(ref('fct_orders')) }} as as_of_date
),

sessions as (
    -- the 90 days the widest window needs
    select
        fct_sessions.customer_id,
        fct_sessions.session_date,
        fct_sessions.started_at,
        fct_sessions.ended_at,
        fct_sessions.has_order,
        fct_sessions.n_product_views,
        fct_sessions.n_searches,
        fct_sessions.n_cart_adds,
        fct_sessions.n_cart_removes
    from {{ ref('fct_sessions') }} as fct_sessions
    cross join as_of
    where
        fct_sessions.customer_id is not null
        and fct_sessions.session_date >= as_of.as_of_date - {{ windows | max }}
),

lifetime_sessions as (
    -- all visits before the as-of date: the long view the segmentation model needs
    select
        fct_sessions.customer_id,
        count(*) as n_sessions_lifetime,
        sum(fct_sessions.n_product_views) as n_product_views_lifetime,
        sum(fct_sessions.n_cart_adds) as n_cart_adds_lifetime,
        -- the holiday gift season, 15 November to 24 December
        sum(case
            when (
                extract(month from fct_sessions.session_date) = 11
                and extract(day from fct_sessions.session_date) >= 15
            )
            or (
                extract(month from fct_sessions.session_date) = 12
                and extract(day from fct_sessions.session_date) <= 24
            )
                then 1
            else 0
        end) as n_gift_season_sessions,
        -- a bigint on both engines (Spark's datediff is an int)
        cast(
            {{ dbt.datediff("max(fct_sessions.session_date)", "max(as_of.as_of_date)", "day") }}
            as bigint
        ) as days_since_last_visit
    from {{ ref('fct_sessions') }} as fct_sessions
    cross join as_of
    where fct_sessions.customer_id is not null and fct_sessions.session_date < as_of.as_of_date
    group by fct_sessions.customer_id
),

lifetime_email as (
    select
        activity.customer_id,
        sum(activity.n_email_opens) as n_email_opens_lifetime
    from {{ activity }} as activity
    cross join as_of
    where activity.n_email_opens > 0 and activity.activity_date < as_of.as_of_date
    group by activity.customer_id
),

lifetime_campaigns as (
    select count(distinct activity.campaign_name) as n_campaigns_lifetime
    from {{ activity }} as activity
    cross join as_of
    where activity.n_email_opens > 0 and activity.activity_date < as_of.as_of_date
),

cart_sessions as (
    -- a cart is abandoned when no order follows within 24 hours of its last add
    select
        sessions.customer_id,
        sessions.session_date,
        sessions.ended_at,
        sessions.has_order
        or exists (
            select 1 from {{ orders }} as orders
            where
                orders.customer_id = sessions.customer_id
                and orders.ordered_at >= sessions.started_at
                and orders.ordered_at < {{ dbt.dateadd("hour", 24, "sessions.ended_at") }}
        ) as is_converted
    from sessions
    where sessions.n_cart_adds > sessions.n_cart_removes
),

session_features as (
    select
        sessions.customer_id,
        {%- for days in windows %}
            sum(case when sessions.session_date >= as_of.as_of_date - {{ days }} then 1 else 0 end)
                as n_sessions_{{ days }}d,
            sum(case when sessions.session_date >= as_of.as_of_date - {{ days }}
                    then sessions.n_product_views
                else 0
            end) as n_product_views_{{ days }}d,
            sum(case when sessions.session_date >= as_of.as_of_date - {{ days }}
                    then sessions.n_searches
                else 0
            end) as n_searches_{{ days }}d,
            sum(case when sessions.session_date >= as_of.as_of_date - {{ days }}
                    then sessions.n_cart_adds
                else 0
            end) as n_cart_adds_{{ days }}d
            {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from sessions
    cross join as_of
    where sessions.session_date < as_of.as_of_date
    group by sessions.customer_id
),

cart_features as (
    select
        cart_sessions.customer_id,
        {%- for days in windows %}
            sum(case when cart_sessions.session_date >= as_of.as_of_date - {{ days }}
                    and not cart_sessions.is_converted then 1
                else 0
            end) as n_abandoned_carts_{{ days }}d,
        {%- endfor %}
        max(case when cart_sessions.session_date >= as_of.as_of_date - 7
                and not cart_sessions.is_converted then 1
            else 0
        end) = 1 as has_open_cart,
        -- a DOUBLE on both engines (over 0.0/1.0 literals Spark averages a decimal(6,5))
        avg(cast(case when cart_sessions.session_date >= as_of.as_of_date - 90
                then case when cart_sessions.is_converted then 0 else 1 end
        end as double))
            as cart_abandonment_rate_90d
    from cart_sessions
    cross join as_of
    where cart_sessions.session_date < as_of.as_of_date
    group by cart_sessions.customer_id
),

category_views as (
    select
        activity.customer_id,
        activity.product_category,
        sum(activity.n_product_views) as n_views
    from {{ activity }} as activity
    cross join as_of
    where
        activity.n_product_views > 0
        and activity.product_category is not null
        and activity.activity_date >= as_of.as_of_date - 90
        and activity.activity_date < as_of.as_of_date
    group by activity.customer_id, activity.product_category
),

top_category as (
    select
        customer_id,
        product_category as top_category,
        top_category_share
    from (
        select
            customer_id,
            product_category,
            {{ round_double(
                "cast(n_views as double) / sum(n_views) over (partition by customer_id)", 4
            ) }} as top_category_share,
            row_number() over (
                partition by customer_id order by n_views desc, product_category asc
            ) as _category_rank
        from category_views
    ) as ranked
    where _category_rank = 1
),

campaigns as (
    -- the campaigns anyone opened: the store's sends of the last 90 days
    select count(distinct activity.campaign_name) as n_campaigns_90d
    from {{ activity }} as activity
    cross join as_of
    where
        activity.n_email_opens > 0
        and activity.activity_date >= as_of.as_of_date - 90
        and activity.activity_date < as_of.as_of_date
),

email_features as (
    select
        activity.customer_id,
        sum(activity.n_email_opens) as n_email_opens_90d,
        sum(activity.n_email_clicks) as n_email_clicks_90d
    from {{ activity }} as activity
    cross join as_of
    where
        activity.n_email_opens + activity.n_email_clicks > 0
        and activity.activity_date >= as_of.as_of_date - 90
        and activity.activity_date < as_of.as_of_date
    group by activity.customer_id
),

spend_features as (
    select
        orders.customer_id,
        case
            when sum(orders.gross_revenue) > 0
                then {{ round_double(
                        'cast(sum(orders.discount_amount) as double) / sum(orders.gross_revenue)',
                        4
                    ) }}
        end as discount_share_of_spend
    from {{ orders }} as orders
    where orders.is_completed and orders.customer_id is not null
    group by orders.customer_id
),

final as (
    -- the counts as BIGINT (a sum is a HUGEINT in DuckDB, and 128-bit columns are slow to read)
    select
        customers.customer_id,
        {%- for days in windows %}
            cast(coalesce(session_features.n_sessions_{{ days }}d, 0) as bigint)
                as n_sessions_{{ days }}d,
            cast(coalesce(session_features.n_product_views_{{ days }}d, 0) as bigint)
                as n_product_views_{{ days }}d,
            cast(coalesce(session_features.n_searches_{{ days }}d, 0) as bigint)
                as n_searches_{{ days }}d,
            cast(coalesce(session_features.n_cart_adds_{{ days }}d, 0) as bigint)
                as n_cart_adds_{{ days }}d,
            cast(coalesce(cart_features.n_abandoned_carts_{{ days }}d, 0) as bigint)
                as n_abandoned_carts_{{ days }}d,
        {%- endfor %}
        coalesce(cart_features.has_open_cart, false) as has_open_cart,
        cart_features.cart_abandonment_rate_90d,
        lifetime_sessions.days_since_last_visit,
        cast(coalesce(lifetime_sessions.n_sessions_lifetime, 0) as bigint) as n_sessions_lifetime,
        cast(coalesce(lifetime_sessions.n_product_views_lifetime, 0) as bigint)
            as n_product_views_lifetime,
        cast(coalesce(lifetime_sessions.n_cart_adds_lifetime, 0) as bigint) as n_cart_adds_lifetime,
        case
            when lifetime_sessions.n_sessions_lifetime > 0
                then {{ round_double(
                        'cast(lifetime_sessions.n_gift_season_sessions as double)'
                        ~ ' / lifetime_sessions.n_sessions_lifetime', 4
                    ) }}
        end as gift_season_session_share,
        case
            when lifetime_campaigns.n_campaigns_lifetime > 0
                then {{ round_double(
                        'cast(coalesce(lifetime_email.n_email_opens_lifetime, 0) as double)'
                        ~ ' / lifetime_campaigns.n_campaigns_lifetime', 4
                    ) }}
        end as email_open_rate_lifetime,
        top_category.top_category,
        top_category.top_category_share,
        cast(coalesce(email_features.n_email_opens_90d, 0) as bigint) as n_email_opens_90d,
        cast(coalesce(email_features.n_email_clicks_90d, 0) as bigint) as n_email_clicks_90d,
        case
            when campaigns.n_campaigns_90d > 0
                then {{ round_double(
                        'cast(coalesce(email_features.n_email_opens_90d, 0) as double)'
                        ~ ' / campaigns.n_campaigns_90d', 4
                    ) }}
        end as email_open_rate_90d,
        case
            when email_features.n_email_opens_90d > 0
                then {{ round_double(
                        'cast(email_features.n_email_clicks_90d as double)'
                        ~ ' / email_features.n_email_opens_90d', 4
                    ) }}
        end as email_click_rate_90d,
        spend_features.discount_share_of_spend
    from customers
    cross join campaigns
    cross join lifetime_campaigns
    left join session_features on customers.customer_id = session_features.customer_id
    left join lifetime_sessions on customers.customer_id = lifetime_sessions.customer_id
    left join lifetime_email on customers.customer_id = lifetime_email.customer_id
    left join cart_features on customers.customer_id = cart_features.customer_id
    left join top_category on customers.customer_id = top_category.customer_id
    left join email_features on customers.customer_id = email_features.customer_id
    left join spend_features on customers.customer_id = spend_features.customer_id
)

select * from final
