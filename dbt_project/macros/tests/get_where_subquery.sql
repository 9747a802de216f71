{#- A test's `where` config, as dbt applies it (the tested relation read through a filtered
    subquery), with one placeholder: `__latest_change__` stands for the relation's newest
    change id (`change_id`, stamped by the refresh that last wrote a row: see
    macros/incremental_changes.sql). `where: "change_id = __latest_change__"` thus tests the
    rows the last refresh wrote, every row after a full build, which stamps them all alike.
    For a check that holds row by row (not_null, relationships, accepted_values) on a model
    whose older rows passed when they were written: a daily run then reads the day's rows,
    not all history. Uniqueness is not such a check (a new row can repeat an old one's key):
    `unique_in_latest_change` does that. The override is the one dbt documents for `where`
    placeholders (dispatched in the `dbt` namespace: the root project's comes first). -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- set where = where | replace(
            '__latest_change__', '(select max(change_id) from ' ~ relation ~ ')') -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
