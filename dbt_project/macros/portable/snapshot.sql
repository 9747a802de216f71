{#-
    dbt snapshots on Spark's plain Parquet tables (the local engine: no table format with
    MERGE installs from the package registry, docs/scale-out.md).

    dbt-spark's snapshot materialization refuses any file format but delta, iceberg and hudi:
    it records a run with MERGE. dbt picks a project's materialization over the adapter's, so
    this one runs on Spark instead. It keeps dbt's snapshot semantics, reusing dbt-core's
    helpers: the strategy (`strategy_dispatch`: check or timestamp, hard_deletes), the first
    build (`build_snapshot_table`) and the changes of a run (`snapshot_staging_table`: rows to
    insert, and the open rows to close on a change or, with hard_deletes invalidate, a removal).
    Where dbt MERGEs those changes into the history, this materialization writes the whole new
    history to `<snapshot>__dbt_new` (the closed rows as they are, the open rows closed where a
    change names them, the new rows) and swaps it in by renaming:

        <snapshot> -> <snapshot>__dbt_old, <snapshot>__dbt_new -> <snapshot>, drop __dbt_old

    A run killed at any point leaves the old history or the new one, and the next run recovers
    from what it finds before it starts (`spark_snapshot_recover`). A delta, iceberg or hudi
    snapshot goes to dbt-spark's own materialization (MERGE).
-#}
{% materialization snapshot, adapter='spark' %}
    {%- set file_format = config.get('file_format') or 'parquet' -%}
    {%- if file_format in ['delta', 'iceberg', 'hudi'] -%}
        {#- dbt-spark's, in the `dbt` namespace with the other adapters' macros -#}
        {{ return(dbt.materialization_snapshot_spark()) }}
    {%- endif -%}

    {%- set target_table = model.get('alias', model.get('name')) -%}
    {%- set strategy_name = config.get('strategy') -%}
    {%- set grant_config = config.get('grants') -%}
    {%- set columns = config.get('snapshot_table_column_names') or get_snapshot_table_column_names() -%}

    {% if not adapter.check_schema_exists(model.database, model.schema) %}
        {% do create_schema(api.Relation.create(schema=model.schema)) %}
    {% endif %}

    {%- set target_relation = spark_snapshot_recover(model.schema, target_table) -%}
    {%- set target_relation_exists = target_relation is not none -%}
    {%- if not target_relation_exists -%}
        {%- set target_relation = api.Relation.create(
            schema=model.schema, identifier=target_table, type='table') -%}
    {%- elif not target_relation.is_table -%}
        {% do exceptions.relation_wrong_type(target_relation, 'table') %}
    {%- endif -%}
    {%- set new_relation = target_relation.incorporate(
        path={'identifier': target_table ~ '__dbt_new'}, type='table') -%}
    {%- set old_relation = target_relation.incorporate(
        path={'identifier': target_table ~ '__dbt_old'}, type='table') -%}
    {%- set history_view = target_relation.incorporate(
        path={'identifier': target_table ~ '__dbt_tmp'}, type='view') -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- set strategy_macro = strategy_dispatch(strategy_name) -%}
    {%- set strategy = strategy_macro(model, 'snapshotted_data', 'source_data', model['config'],
                                      target_relation_exists) -%}

    {%- if not target_relation_exists -%}
        {%- set history_sql = build_snapshot_table(strategy, model['compiled_code']) -%}
    {%- else -%}
        {{ adapter.assert_valid_snapshot_target_given_strategy(target_relation, columns, strategy) }}
        {%- set history_sql = spark_snapshot_new_history(strategy, sql, target_relation, columns) -%}
    {%- endif -%}

    {#- the new history as a view first: its columns and types make the new table, which is
        created empty, then filled (a run killed while it is filled leaves a table the next run
        drops; a killed CREATE TABLE ... AS SELECT can leave files without a table, which a
        managed table's next CREATE refuses) -#}
    {% call statement('build_snapshot_history_view') -%}
        {{ create_view_as(history_view, history_sql) }}
    {%- endcall %}
    {%- set history_columns = adapter.get_columns_in_relation(history_view) -%}
    {% do adapter.drop_relation(new_relation) %}
    {% call statement('create_snapshot_new_table') -%}
        create table {{ new_relation }} (
            {%- for column in history_columns %}
            {{ adapter.quote(column.name) }} {{ column.data_type }}{{ ',' if not loop.last }}
            {%- endfor %}
        )
        using {{ file_format }}
    {%- endcall %}
    {% call statement('main') -%}
        insert into {{ new_relation }}
        select
            {%- for column in history_columns %}
            {{ adapter.quote(column.name) }}{{ ',' if not loop.last }}
            {%- endfor %}
        from {{ history_view }}
    {%- endcall %}
    {% do adapter.drop_relation(history_view) %}

    {#- the swap: from here a killed run leaves __dbt_new complete, and the next run's recovery
        puts it in place -#}
    {% if target_relation_exists %}
        {% do adapter.rename_relation(target_relation, old_relation) %}
    {% endif %}
    {% do adapter.rename_relation(new_relation, target_relation) %}
    {% do adapter.drop_relation(old_relation) %}

    {% set should_revoke = should_revoke(target_relation_exists, full_refresh_mode=False) %}
    {% do apply_grants(target_relation, grant_config, should_revoke=should_revoke) %}
    {% do persist_docs(target_relation, model) %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{#-
    Before a run: the snapshot's table as a killed run may have left it, put right; returns the
    relation (none when there is no history yet). The run renames the history to __dbt_old only
    once __dbt_new is complete, so:
    - no table but an __dbt_old: the swap was cut short. __dbt_new, if there, is the new
      history (complete), else __dbt_old is the old one: either becomes the table;
    - a table: any __dbt_new is a run's unfinished one, any __dbt_old a replaced one (dropped);
    - neither table nor __dbt_old: an __dbt_new is an unfinished first build (dropped: there was
      no history to lose).
-#}
{% macro spark_snapshot_recover(schema, identifier) %}
    {%- set target = adapter.get_relation(database=none, schema=schema, identifier=identifier) -%}
    {%- set new = adapter.get_relation(
        database=none, schema=schema, identifier=identifier ~ '__dbt_new') -%}
    {%- set old = adapter.get_relation(
        database=none, schema=schema, identifier=identifier ~ '__dbt_old') -%}
    {%- set view = adapter.get_relation(
        database=none, schema=schema, identifier=identifier ~ '__dbt_tmp') -%}
    {%- if target is none and old is not none -%}
        {%- set target = old.incorporate(path={'identifier': identifier}) -%}
        {%- if new is not none -%}
            {{ log('snapshot ' ~ schema ~ '.' ~ identifier ~ ': completing a swap cut short (the '
                   ~ 'new history from ' ~ new.identifier ~ ')', info=true) }}
            {%- do adapter.rename_relation(new, target) -%}
            {%- set new = none -%}
        {%- else -%}
            {{ log('snapshot ' ~ schema ~ '.' ~ identifier ~ ': restoring the history from '
                   ~ old.identifier, info=true) }}
            {%- do adapter.rename_relation(old, target) -%}
            {%- set old = none -%}
        {%- endif -%}
    {%- endif -%}
    {%- for leftover in [new, old, view] if leftover is not none -%}
        {{ log('snapshot ' ~ schema ~ '.' ~ identifier ~ ': dropping ' ~ leftover.identifier
               ~ ', left by an interrupted run', info=true) }}
        {%- do adapter.drop_relation(leftover) -%}
    {%- endfor -%}
    {{ return(adapter.get_relation(database=none, schema=schema, identifier=identifier)) }}
{% endmacro %}


{#-
    The whole history after this run, as dbt's snapshot MERGE leaves it: every row of the
    history, where an open row (dbt_valid_to null) that a change closes (an `update`: its row
    changed; a `delete`: its key is gone, with hard_deletes invalidate) gets that change's
    dbt_valid_to, and the changes' `insert` rows added. A column the query gained is added
    (empty in the older rows), as dbt adds it to the table; one it lost stays, empty in the new
    rows.
-#}
{% macro spark_snapshot_new_history(strategy, source_sql, target_relation, columns) %}
    {%- set changes = snapshot_staging_table(strategy, source_sql, target_relation) -%}
    {%- set bookkeeping = ['dbt_change_type', 'dbt_unique_key'] -%}
    {%- for key in (strategy.unique_key if strategy.unique_key | is_list else [strategy.unique_key]) -%}
        {%- do bookkeeping.append('dbt_unique_key_' ~ loop.index) -%}
    {%- endfor -%}
    {%- set held = adapter.get_columns_in_relation(target_relation)
                   | map(attribute='name') | list -%}
    {%- set held_lower = held | map('lower') | list -%}
    {%- set offered = get_columns_in_query(changes) | map('lower') | list -%}
    {%- set gained = [] -%}
    {%- for name in offered if name not in held_lower and name not in bookkeeping -%}
        {%- do gained.append(name) -%}
    {%- endfor -%}
    {%- set valid_to = columns.dbt_valid_to | lower -%}
    {%- set scd_id = columns.dbt_scd_id -%}
    {%- set kept, inserted = [], [] -%}
    {%- for name in held -%}
        {%- if name | lower == valid_to -%}
            {%- do kept.append('case when history.' ~ adapter.quote(name)
                ~ ' is null and closing.closed_scd_id is not null then closing.closed_at else history.'
                ~ adapter.quote(name) ~ ' end as ' ~ adapter.quote(name)) -%}
        {%- else -%}
            {%- do kept.append('history.' ~ adapter.quote(name)) -%}
        {%- endif -%}
        {%- do inserted.append(('changes.' ~ adapter.quote(name) if name | lower in offered
                                else 'null') ~ ' as ' ~ adapter.quote(name)) -%}
    {%- endfor -%}
    {%- for name in gained -%}
        {%- do kept.append('null as ' ~ adapter.quote(name)) -%}
        {%- do inserted.append('changes.' ~ adapter.quote(name)) -%}
    {%- endfor -%}
    with changes as (
        {{ changes }}
    ),

    closing as (
        -- one closing per open row (dbt's MERGE matches on the row's dbt_scd_id)
        select {{ scd_id }} as closed_scd_id, max({{ columns.dbt_valid_to }}) as closed_at
        from changes
        where dbt_change_type in ('update', 'delete')
        group by {{ scd_id }}
    )

    select
        {{ kept | join(',\n        ') }}
    from {{ target_relation }} as history
    left join closing on history.{{ scd_id }} = closing.closed_scd_id

    union all

    select
        {{ inserted | join(',\n        ') }}
    from changes
    where changes.dbt_change_type = 'insert'
{% endmacro %}
