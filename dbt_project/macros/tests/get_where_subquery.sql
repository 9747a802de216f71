{#- A test's `where` config, as dbt applies it (the tested relation read through a filtered
    subquery), with two placeholders for checks that hold row by row (not_null,
    accepted_values, relationships), so that a daily run tests the day's rows, not all history:

    - `__new_loads(<feed>, <consumer>)__`, a whole condition on a staging view over a daily
      feed: the row landed on a day of `feed` loaded since `consumer` (the incremental model
      that reads the view) last ran, i.e. the rows its next refresh reads (`new_load_days`;
      every row before its first run). Older rows passed when they were loaded.
    - `__latest_change__`, on an incremental model: its newest change id (`change_id`, stamped
      by the refresh that last wrote a row; macros/incremental_changes.sql), so
      `change_id = __latest_change__` tests the rows the last refresh wrote, every row after a
      full build (which stamps them all alike). Older rows passed when they were written.

    Uniqueness is not such a check (a new row can repeat an old one's key): the tests
    `unique_in_new_loads` and `unique_in_latest_change` check the new keys against all
    history. The override is the one dbt documents for `where` placeholders (dispatched in
    the `dbt` namespace, where the root project's macro comes first). -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- set loads = modules.re.search('__new_loads[(](\\w+), *(\\w+)[)]__', where) -%}
        {%- if loads -%}
            {%- set days = new_load_days(relation.database, loads.group(1), loads.group(2)) -%}
            {%- set where = where | replace(
                loads.group(0), 'true' if days is none else 'landed_on in (' ~ days ~ ')') -%}
        {%- endif -%}
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
