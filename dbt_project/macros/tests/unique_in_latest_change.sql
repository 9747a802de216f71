{#- Fails for every combination of `columns` (NULL counts as a value) that occurs more than once
    among the rows sharing it with a row of the model's newest change (`change_id`).

    On an incremental model the newest change is what the last refresh wrote, so a refresh's rows
    are checked against all history as they land, without grouping all history again (at 1M
    customers the plain `unique` tests on the 100M sessionized events and the sessions took
    35 s of every daily run). Every refresh's rows are checked when written (a failed test fails
    the run, which the next run repeats), so the whole table stays unique.

    When the newest change holds most of the table (a full build stamps every row with it) the
    test groups the whole table, as `unique_combination_of_columns` does: joining every row to
    a set of every key ran out of memory in a 1M-customer full build. The share is read before
    the test's query is compiled (one scan of `change_id`). -#}
{% test unique_in_latest_change(model, columns) %}
{%- set newest_share = 1.0 -%}
{%- if execute -%}
    {%- set counted = run_query(
        "select count(*) filter (where change_id = (select max(change_id) from " ~ model ~ "))"
        ~ " / greatest(count(*), 1) from " ~ model) -%}
    {%- set newest_share = counted.columns[0].values()[0] | float -%}
{%- endif -%}
{%- if newest_share >= 0.5 %}
select {{ columns | join(', ') }}, count(*) as n_rows
from {{ model }}
group by all
having count(*) > 1
{%- else %}
with latest as (
    select distinct {{ columns | join(', ') }}
    from {{ model }}
    where change_id = (select max(change_id) from {{ model }})
)
select {% for column in columns %}model_rows.{{ column }}, {% endfor %}count(*) as n_rows
from {{ model }} as model_rows
inner join latest
    on {% for column in columns %}model_rows.{{ column }} is not distinct from latest.{{ column }}
    {%- if not loop.last %} and {% endif %}{% endfor %}
group by all
having count(*) > 1
{%- endif %}
{% endtest %}
