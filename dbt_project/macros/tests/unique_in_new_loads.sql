{#- Fails for every value of `column_name` that occurs more than once among the rows sharing it
    with a row loaded since `consumer` (an incremental model built on this staging view) was
    last refreshed: the rows its next refresh reads, checked against all history.

    A staging view over raw has no change stamp, but each raw row keeps when it was loaded
    (`loaded_at`), and the consumer's watermark when it last ran (`recorded_at`). `dbt build`
    runs a view's tests before its children and skips them when a test fails, so a row loaded
    after the consumer's last refresh has not passed this test yet, and every older row has.
    (At 1M customers the plain `unique` on 100M event ids took 15 to 19 s of every daily run;
    checking a day's 270k against them, about 2 s.) Ten minutes of margin cover a clock set back.
    A consumer built without the view's tests (selected alone in the UI) moves the mark on:
    ingestion's own duplicate check (`_mark_loaded_duplicates`) still held those rows.

    With no watermark yet (a first build) or most rows new, the test groups the whole view as
    `unique` does: joining every row to a set of every key ran out of memory at 1M customers
    (`unique_in_latest_change`). Both are read before the query is compiled. -#}
{% test unique_in_new_loads(model, column_name, consumer) %}
{%- set since = none -%}
{%- set new_share = 1.0 -%}
{%- if execute -%}
    {%- set recorded = run_query(
        "select max(recorded_at) - interval 10 minutes from " ~ watermarks_relation()
        ~ " where model_name = '" ~ consumer ~ "'") -%}
    {%- set since = recorded.columns[0].values()[0] -%}
    {%- if since is not none -%}
        {%- set counted = run_query(
            "select count(*) filter (where loaded_at >= '" ~ since ~ "'::timestamp)"
            ~ " / greatest(count(*), 1) from " ~ model) -%}
        {%- set new_share = counted.columns[0].values()[0] | float -%}
    {%- endif -%}
{%- endif -%}
{%- if since is none or new_share >= 0.5 %}
select {{ column_name }}, count(*) as n_rows
from {{ model }}
where {{ column_name }} is not null
group by {{ column_name }}
having count(*) > 1
{%- else %}
with new_values as (
    select distinct {{ column_name }}
    from {{ model }}
    where loaded_at >= '{{ since }}'::timestamp and {{ column_name }} is not null
)
select model_rows.{{ column_name }}, count(*) as n_rows
from {{ model }} as model_rows
inner join new_values on model_rows.{{ column_name }} = new_values.{{ column_name }}
group by model_rows.{{ column_name }}
having count(*) > 1
{%- endif %}
{% endtest %}
