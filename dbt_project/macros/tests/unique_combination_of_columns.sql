{#- Fails for every combination of `combination_of_columns` that occurs more than once. The
    name and argument are dbt_utils': dbt (the manifest's `primary_key`, the docs site) and
    dbt's project evaluator read a model's compound primary key from them. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
select {{ combination_of_columns | join(', ') }}, count(*) as n_rows
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}
