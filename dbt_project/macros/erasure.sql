{#- The pseudonymous key of an erased customer (core/privacy.py `customer_key`). -#}
{% macro erasure_key(column) -%}
    ('erased-' || left({{ sha256_hex("'segmenta-erasure:' || " ~ column) }}, 20))
{%- endmacro %}


{#-
    on-run-end: the events change log names visitors by user id. When an erasure is applied
    (core/privacy.py), the entries the incremental models had consumed are keyed at once; the
    newer ones (from_change_id, change_id], the erasure's own "before" entries included, name
    the erased customer until every incremental model has consumed them (its watermark is
    past them). Then they keep only the key too.
-#}
{% macro scrub_erased_change_log() -%}
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
