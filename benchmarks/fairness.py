"""Benchmark the fairness report (segments/fairness.py) at scale.

    .venv/bin/python benchmarks/fairness.py --customers 1000000 --segments 35

Builds, in an in-memory DuckDB, `marts.customer_fairness_groups` for --customers customers
(4 genders, 7 age bands, 6 income bands, 30 countries, drawn by hash), `marts.segment_memberships`
with --segments segments each holding about 15 % of customers, and three audiences on the first
three segments (9 in 10 members in the target arm). Times the counts (DuckDB) and the rates,
ratios and flags (fairlearn's MetricFrame over the counts) separately, and prints the rows.
"""

from __future__ import annotations

import argparse
import resource
import time

import duckdb
import fairlearn.metrics  # noqa: F401  (imported before the clock starts)

from segments import fairness


def build(con: duckdb.DuckDBPyConnection, customers: int, segments: int) -> None:
    """The synthetic warehouse described in the module docstring."""
    con.execute("create schema marts; create schema activation")
    con.execute(f"""
        create table marts.customer_fairness_groups as
        select 'c' || i as customer_id,
               ['female', 'male', 'non_binary', 'unknown'][(1 + hash(i) % 4)::bigint] as gender,
               ['18-24', '25-34', '35-44', '45-54', '55-64', '65+', 'unknown'][
                   (1 + hash(i * 7) % 7)::bigint] as age_band,
               ['low', 'lower_middle', 'middle', 'upper_middle', 'high', 'unknown'][
                   (1 + hash(i * 3) % 6)::bigint] as income_band,
               'C' || (hash(i * 11) % 30)::varchar as country
        from range({customers}) as t(i)
    """)
    con.execute(f"""
        create table marts.segment_memberships as
        select customer_id, 'seg_' || s as segment_key, 'Segment ' || s as segment_name,
               'rule' as segment_type, date '2026-10-31' as as_of_date
        from marts.customer_fairness_groups, range({segments}) as t(s)
        where hash(customer_id || s) % 100 < 15
    """)
    con.execute("""
        create table activation.audience_assignments as
        select 'aud_' || substr(segment_key, 5) as audience_key, customer_id,
               case when hash(customer_id) % 10 = 0 then 'holdout' else 'target' end as arm,
               0.1 as holdout_share, now()::timestamp as first_assigned_at
        from marts.segment_memberships where segment_key in ('seg_0', 'seg_1', 'seg_2')
    """)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000, help="customers (1M)")
    parser.add_argument("--segments", type=int, default=35, help="segments (35)")
    args = parser.parse_args()
    con = duckdb.connect()
    build(con, args.customers, args.segments)
    memberships = con.execute("select count(*) from marts.segment_memberships").fetchone()[0]
    audiences = [(f"aud_{i}", f"seg_{i}") for i in range(min(3, args.segments))]
    started = time.perf_counter()
    counts = fairness.selection_counts(con, audiences)
    counted = time.perf_counter()
    report = fairness.fairness_table(counts)
    done = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.customers:,} customers, {args.segments} segments ({memberships:,} "
          f"memberships), {len(audiences)} audiences: {len(report):,} report rows, "
          f"{int(report['is_flagged'].sum())} flagged")
    print(f"counts (DuckDB) {counted - started:.2f} s, rates and flags (fairlearn) "
          f"{done - counted:.2f} s, peak RSS {peak:,.0f} MB")


if __name__ == "__main__":
    main()
