{#-
    The 1-5 score of each distinct value of `column` in `relation`, rows `value`, `score` (5 is
    best; the lowest value is the worst, or the highest with `descending`, as for recency).

    The score starts as the percentile band, least(5, 1 + floor(5 * percent_rank)), so equal
    values share a score. With five or more distinct values every level is then used: walking
    the values from worst to best, a score never rises by more than one level from the value
    before (where most customers share one value, e.g. a single order, the next values get
    2, 3, ... rather than jumping to 4), and the best values are raised so that the k-th best of
    the last four gets at least 6 - k. In closed form, for the i-th of n distinct values with
    percentile score p: t_i = i + least(0, min over j <= i of (p_j - j)), and the score is
    greatest(t_i, 5 - (n - i)). With fewer than five distinct values the percentile score stays.
-#}
{% macro rfm_score_levels(relation, column, descending=false) -%}
    {%- set direction = 'desc' if descending else 'asc' -%}
    select
        value,
        case
            when n_values >= 5
                then greatest(
                        position + least(0, min(band - position) over (
                            order by position rows between unbounded preceding and current row
                        )),
                        5 - (n_values - position)
                    )
            else band
        end as score
    from (
        select
            value,
            band,
            row_number() over (order by value {{ direction }}) as position,
            count(*) over () as n_values
        from (
            -- one row per value: equal values have equal percent ranks
            select distinct
                {{ column }} as value,
                cast(least(5, 1 + floor(5 * percent_rank() over (
                    order by {{ column }} {{ direction }}
                ))) as integer) as band
            from {{ relation }}
        ) as bands
    ) as levels
{%- endmacro %}
