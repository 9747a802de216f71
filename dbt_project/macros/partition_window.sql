{#-
    Which rows an incremental model processes in this run, as a SQL predicate.

    Dagster passes the run's daily partitions as the vars `partition_start` and `partition_end`
    (load days, YYYY-MM-DD, inclusive). `column` is the load day of the input rows
    (`landed_on`). Without the vars, an incremental run re-processes the newest load day it has
    already seen onwards (`watermark_column` of the model's own table). A full build (first run,
    `--full-refresh`, unit tests) takes every row.
-#}
{% macro partition_window(column, watermark_column='landed_on') -%}
    {%- if not is_incremental() -%}
        (1 = 1)
    {%- elif var('partition_start', '') != '' -%}
        ({{ column }} between cast('{{ var("partition_start") }}' as date)
            and cast('{{ var("partition_end") or var("partition_start") }}' as date))
    {%- else -%}
        ({{ column }} >= (select max({{ watermark_column }}) from {{ this }}))
    {%- endif -%}
{%- endmacro %}


{#-
    The moment this dbt invocation started, stored on the rows it writes. Downstream incremental
    models pick up the rows written after their own newest `refreshed_at` (a watermark that
    survives a failed run: nothing is skipped, at worst something is recomputed).
-#}
{% macro refreshed_at() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}


{#- Rows of `relation` written after this model's own newest refresh (all rows on a full build). -#}
{% macro written_since_last_refresh(column='refreshed_at') -%}
    {%- if is_incremental() -%}
        ({{ column }} > (select coalesce(max(refreshed_at), cast('1900-01-01' as timestamp)) from {{ this }}))
    {%- else -%}
        (1 = 1)
    {%- endif -%}
{%- endmacro %}



{#-
    A pre-hook: delete the rows of the window's load days before they are re-processed, so a
    re-delivered day that lost rows does not keep them (delete+insert only replaces the keys it
    inserts).
-#}
{% macro clear_partition_window(column) -%}
    {%- if is_incremental() and var('partition_start', '') != '' -%}
        delete from {{ this }} where {{ partition_window(column) }}
    {%- endif -%}
{%- endmacro %}
