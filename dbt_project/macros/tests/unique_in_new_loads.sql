{#- Fails for every value of `column_name` that occurs more than once among the rows sharing it
    with a row loaded since `consumer` (an incremental model built on this staging view) was
    last refreshed: the rows its next refresh reads, checked against all history.

    Ingestion records each day of a daily feed it loads in `raw.loaded_days`, with the load's
    change id (one sequence with the change logs), and the consumer's watermark is the newest
    change id when it last ran. So the days loaded since are those recorded with a higher id
    (or none: a day loaded by an older version). `dbt build` runs a view's tests before its
    children and skips them when a test fails, so a row of those days has not passed this test
    yet, and every other row has. No clock is involved: a margin of wall-clock time, as this
    test had, reached back over minutes of a full build's load (17M of 100M events at 1M
    customers, 17 s of the next daily run instead of about 2). A consumer built without the
    view's tests (selected alone in the UI) moves the mark on: ingestion's own duplicate check
    (`_loaded_duplicates`) still held those rows.

    With no watermark yet (a first build), no record of the loads, or most rows new, the test
    groups the whole view as `unique` does: joining every row to a set of every key ran out of
    memory at 1M customers (`unique_in_latest_change`). All are read before the query is
    compiled. `feed`: the daily feed the view reads (its rows' landing day is `landed_on`). -#}
{% test unique_in_new_loads(model, column_name, consumer, feed) %}
{%- set new_days = none -%}
{%- set new_share = 1.0 -%}
{%- if execute -%}
    {%- set new_days = new_load_days(model.database, feed, consumer) -%}
    {%- if new_days is not none -%}
        {%- set counted = run_query(
            "select count(*) filter (where landed_on in (" ~ new_days ~ "))"
            ~ " / greatest(count(*), 1) from " ~ model) -%}
        {%- set new_share = counted.columns[0].values()[0] | float -%}
    {%- endif -%}
{%- endif -%}
{%- if new_days is none or new_share >= 0.5 %}
select {{ column_name }}, count(*) as n_rows
from {{ model }}
where {{ column_name }} is not null
group by {{ column_name }}
having count(*) > 1
{%- else %}
with new_values as (
    select distinct {{ column_name }}
    from {{ model }}
    where landed_on in ({{ new_days }}) and {{ column_name }} is not null
)
select model_rows.{{ column_name }}, count(*) as n_rows
from {{ model }} as model_rows
inner join new_values on model_rows.{{ column_name }} = new_values.{{ column_name }}
group by model_rows.{{ column_name }}
having count(*) > 1
{%- endif %}
{% endtest %}


{#- SQL selecting the landing days of `feed` loaded since `consumer` (an incremental model) last
    ran, as `unique_in_new_loads` explains; none before its first run, without a record of the
    loads, or without watermarks (on Spark every model is rebuilt whole and keeps none:
    macros/portable/incremental.sql), when every day is new. Read when the test is compiled,
    just before it runs. -#}
{% macro new_load_days(database, feed, consumer) %}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set marks_schema, marks_table = (watermarks_relation() | trim).split('.') -%}
    {%- if adapter.get_relation(database=database, schema=marks_schema,
                                identifier=marks_table) is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set loads = adapter.get_relation(database=database, schema='raw',
                                         identifier='loaded_days') -%}
    {%- set recorded = run_query(
        "select max(change_id) from " ~ watermarks_relation()
        ~ " where model_name = '" ~ consumer ~ "'") -%}
    {%- set mark = recorded.columns[0].values()[0] -%}
    {%- if loads is none or mark is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set days -%}
        select day from {{ loads }}
        where feed = '{{ feed }}' and (change_id is null or change_id > {{ mark }})
    {%- endset -%}
    {{ return(days) }}
{% endmacro %}
