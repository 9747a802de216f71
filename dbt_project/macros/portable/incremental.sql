{#-
    The exact incremental refresh per engine (macros/incremental_changes.sql, docs/scale-out.md).

    DuckDB: the incremental models delete the rows of what the change logs name and insert them
    again (pre-hooks with DELETE, post-hooks recording a watermark with `insert or replace`),
    and the bookkeeping tables take primary keys and `update ... from`.

    Spark (the local engine's plain Parquet tables): no DELETE, UPDATE or MERGE, and no table
    format that has them installs from the package registry (Delta's and Iceberg's runtimes are
    jars). There every incremental model is a table rebuilt whole on each run, the same SQL as
    a DuckDB full build (exact by construction), with none of the hooks; the watermarks and the
    erasure passes are DuckDB's bookkeeping and are not kept. The raw tables Spark reads are
    copied by day from DuckDB's (core/spark_raw.py), already scrubbed of erased customers.
-#}

{#- A model's `materialized`: `incremental` on DuckDB, `table` (rebuilt each run) elsewhere. -#}
{% macro incremental_on_duckdb() -%}
    {{ return(adapter.dispatch('incremental_on_duckdb', 'segmenta')()) }}
{%- endmacro %}

{% macro default__incremental_on_duckdb() -%}
    {{ return('table') }}
{%- endmacro %}

{% macro duckdb__incremental_on_duckdb() -%}
    {{ return('incremental') }}
{%- endmacro %}


{#- A model's pre_hook or post_hook of the incremental refresh (a hook or a list of them): as
    given on DuckDB, none elsewhere (a table rebuilt whole deletes nothing and records no
    watermark). -#}
{% macro incremental_hooks(hooks) -%}
    {{ return(adapter.dispatch('incremental_hooks', 'segmenta')(hooks)) }}
{%- endmacro %}

{% macro default__incremental_hooks(hooks) -%}
    {{ return([]) }}
{%- endmacro %}

{% macro duckdb__incremental_hooks(hooks) -%}
    {{ return(hooks) }}
{%- endmacro %}


{#-
    on-run-start. DuckDB: the watermark table exists before any model reads it.
    Spark: no watermarks (every model is rebuilt whole). The models stamp their rows with the
    newest change id of the change logs (`latest_change_id`, the `change_id` column the tests
    of a refresh's rows read); the logs are DuckDB's bookkeeping, so a Spark home that has no
    copy of them gets them empty here (ids 0), as DuckDB's on-run-end creates its events log
    for a run before the first load. Several statements: run here, the hook itself is empty.
-#}
{% macro create_watermarks() -%}
    {{ return(adapter.dispatch('create_watermarks', 'segmenta')()) }}
{%- endmacro %}

{% macro default__create_watermarks() -%}
    {%- do run_query('create schema if not exists raw') -%}
    {%- do run_query(
        'create table if not exists raw.orders_changes (change_id bigint, order_id '
        ~ dbt.type_string() ~ ', changed_at timestamp) using parquet') -%}
    {%- do run_query(
        'create table if not exists raw.events_changes (change_id bigint, anonymous_id '
        ~ dbt.type_string() ~ ', user_id ' ~ dbt.type_string()
        ~ ', first_event_at timestamp, changed_at timestamp) using parquet') -%}
{%- endmacro %}

{% macro duckdb__create_watermarks() -%}
    create table if not exists {{ watermarks_relation() }} (
        model_name {{ dbt.type_string() }} primary key,
        change_id bigint,
        recorded_at timestamp
    )
{%- endmacro %}


{#-
    on-run-end. DuckDB: the events change log names visitors by user id. When an erasure is
    applied (core/privacy.py), the entries the incremental models had consumed are keyed at
    once; the newer ones (from_change_id, change_id], the erasure's own "before" entries
    included, name the erased customer until every incremental model has consumed them (its
    watermark is past them). Then they keep only the key too.
    Spark: nothing. Its models consume no change-log entry, and its raw tables are DuckDB's,
    copied after the erasure scrubbed them.
-#}
{% macro scrub_erased_change_log() -%}
    {{ return(adapter.dispatch('scrub_erased_change_log', 'segmenta')()) }}
{%- endmacro %}

{% macro default__scrub_erased_change_log() -%}
{%- endmacro %}

{% macro duckdb__scrub_erased_change_log() -%}
    {#- all exist once anything was loaded (ingest/landing.py, core/privacy.py); created here
        empty, with the same columns, for a run before the first load -#}
    create schema if not exists raw;
    create table if not exists raw.events_changes (
        change_id bigint, anonymous_id {{ dbt.type_string() }}, user_id {{ dbt.type_string() }}, first_event_at timestamp,
        changed_at timestamp
    );
    create schema if not exists audit;
    create table if not exists audit.erasure_requests (
        customer_key {{ dbt.type_string() }} primary key, requested_at timestamp
    );
    create table if not exists audit.erasure_passes (
        change_id bigint primary key, from_change_id bigint, scrubbed boolean
    );
    update raw.events_changes set user_id = {{ erasure_key('user_id') }}
    from audit.erasure_passes as passes
    where
        not passes.scrubbed
        and passes.change_id <= (select coalesce(min(change_id), 0) from {{ watermarks_relation() }})
        and raw.events_changes.change_id > passes.from_change_id
        and raw.events_changes.change_id <= passes.change_id
        and raw.events_changes.user_id not like 'erased-%'
        and {{ erasure_key('raw.events_changes.user_id') }} in (
            select customer_key from audit.erasure_requests
        );
    update audit.erasure_passes set scrubbed = true
    where
        not scrubbed
        and change_id <= (select coalesce(min(change_id), 0) from {{ watermarks_relation() }})
{%- endmacro %}
