{#-
    The refresh of customer_product_recommendations: which customers' rows to rewrite.

    A customer's rows in the mart follow from their rows in ml.customer_recommendations (which
    the recommender rewrites for a customer all at once, stamped with one `scored_at`), from
    whether dim_customers holds them not erased, and from the catalogue's name, category and
    price of their products. So a customer is rewritten (deleted, then written from the
    source) when their source rows carry another `scored_at` or count than the mart's, when
    they appear in or drop out of the source or dim_customers, or when a product of theirs
    now reads otherwise in dim_products. Everyone else's rows are what a full build writes.
    `test_the_recommendations_mart_refreshes_to_its_full_build` checks it.
-#}

{% macro changed_recommendations_relation() -%}
    {{ this.schema }}.customer_product_recommendations__changed
{%- endmacro %}


{% macro recommendations_stamp_relation() -%}
    {{ this.schema }}.customer_product_recommendations__stamp
{%- endmacro %}


{#- The change id of this build's rows: a new value of raw.change_seq (the loads' sequence),
    higher than any row of an earlier build's, rebuilt from scratch or not, so the published
    copy takes exactly the rows stamped since it was published. -#}
{% macro recommendations_change_id() -%}
    (select change_id from {{ recommendations_stamp_relation() }})
{%- endmacro %}


{% macro record_recommendations_stamp() -%}
    create sequence if not exists raw.change_seq;
    create or replace table {{ recommendations_stamp_relation() }} as
    select nextval('raw.change_seq') as change_id
{%- endmacro %}


{#- pre-hook: the customers whose rows this refresh rewrites. A mart from before it carried
    `scored_at` and `change_id` gets the columns (before the delete: DuckDB refuses to commit
    a table altered after it was written in the same transaction) and is rewritten whole. -#}
{% macro record_changed_recommendations() -%}
    {%- if is_incremental() -%}
        {%- set built = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
        {%- if 'scored_at' not in built or 'change_id' not in built %}
        alter table {{ this }} add column if not exists scored_at timestamp;
        alter table {{ this }} add column if not exists change_id bigint;
        create or replace table {{ changed_recommendations_relation() }} as
        select customer_id from {{ this }}
        union
        select customer_id from {{ source('ml', 'customer_recommendations') }}
        {%- else %}
        create or replace table {{ changed_recommendations_relation() }} as
        with

        source_customers as (
            select
                recommendations.customer_id,
                max(recommendations.scored_at) as scored_at,
                count(*) as n_rows
            from {{ source('ml', 'customer_recommendations') }} as recommendations
            inner join {{ ref('dim_customers') }} as customers
                on recommendations.customer_id = customers.customer_id
            where not customers.is_deleted
            group by recommendations.customer_id
        ),

        built_customers as (
            select customer_id, max(scored_at) as scored_at, count(*) as n_rows
            from {{ this }}
            group by customer_id
        ),

        built_products as (
            select distinct product_id, product_name, category, subcategory, price, currency
            from {{ this }}
        ),

        changed_products as (
            select built.product_id
            from built_products as built
            left join {{ ref('dim_products') }} as products
                on built.product_id = products.product_id
            where built.product_name is distinct from products.product_name
                or built.category is distinct from products.category
                or built.subcategory is distinct from products.subcategory
                or built.price is distinct from products.price
                or built.currency is distinct from products.currency
        )

        select coalesce(source_customers.customer_id, built_customers.customer_id) as customer_id
        from source_customers
        full outer join built_customers
            on source_customers.customer_id = built_customers.customer_id
        where source_customers.customer_id is null
            or built_customers.customer_id is null
            or source_customers.scored_at is distinct from built_customers.scored_at
            or source_customers.n_rows <> built_customers.n_rows
        union
        select customer_id from {{ this }}
        where product_id in (select product_id from changed_products)
        {%- endif %}
    {%- endif -%}
{%- endmacro %}


{% macro delete_changed_recommendations() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where customer_id in (select customer_id from {{ changed_recommendations_relation() }})
    {%- endif -%}
{%- endmacro %}


{#- post-hook: the lists of changed customers are not kept (they name customers). -#}
{% macro drop_changed_recommendations() -%}
    drop table if exists {{ changed_recommendations_relation() }};
    drop table if exists {{ recommendations_stamp_relation() }}
{%- endmacro %}
