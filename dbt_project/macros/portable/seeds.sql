{#-
    Seeds on Spark: dbt-spark's session-mode loader (its `spark__load_csv_rows`) binds every
    value as `%s` and Python-formats the statement, so a quote in a value breaks it (seed
    rfm_segments: "Can't Lose Them") and an empty value arrives as the text 'None' (dbt-spark
    issue 901: geo_climate's empty city). dbt dispatches `load_csv_rows` in the `dbt` namespace,
    where this project's macro comes first: each value is inlined as a literal instead, cast to
    the column's type (the seed's `column_types`, else dbt's inferred type) as dbt-spark does,
    and an empty value is `null`, as on DuckDB.
-#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set types = [] -%}
    {%- for column_name in agate_table.column_names -%}
        {%- do types.append(column_override.get(
            column_name, adapter.convert_type(agate_table, loop.index0))) -%}
    {%- endfor -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(get_batch_size()) -%}
        {%- set sql -%}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
                ({%- for value in row -%}
                    cast({{ spark_seed_literal(value) }} as {{ types[loop.index0] }})
                    {%- if not loop.last %}, {% endif -%}
                {%- endfor -%}){%- if not loop.last %},{% endif %}
            {% endfor %}
        {%- endset -%}
        {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
        {%- if loop.first -%}
            {%- do statements.append(sql) -%}
        {%- endif -%}
    {%- endfor -%}
    {#- the SQL dbt writes to the compiled files: the first batch's -#}
    {{ return(statements[0] if statements else '') }}
{% endmacro %}


{#- A CSV value as a Spark SQL literal: `null` for an empty value, else its text quoted, with
    backslashes and quotes escaped (Spark reads backslash escapes in string literals). -#}
{% macro spark_seed_literal(value) -%}
    {%- if value is none -%}
        null
    {%- else -%}
        '{{ (value | string) | replace("\\", "\\\\") | replace("'", "\\'") }}'
    {%- endif -%}
{%- endmacro %}
