import datetime as dt

import dagster as dg
import pandas as pd

from dagster_project.exports import write_segment_files
from dagster_project.resources import HomeResource, WarehouseResource

SYNC_RUNS_DDL = """
create table if not exists activation.sync_runs (
    run_id varchar, destination varchar, audience_key varchar, n_members bigint,
    n_sent bigint, n_skipped bigint, started_at timestamp, finished_at timestamp, status varchar
)
"""


@dg.asset(
    key=["activation", "rfm_segment_files"],
    deps=[dg.AssetKey(["marts", "customer_rfm"]), dg.AssetKey(["marts", "customer_contacts"]),
          dg.AssetKey(["ml", "customer_clusters"])],
    group_name="activation",
    kinds={"csv", "duckdb"},
    pool="duckdb",
)
def rfm_segment_files(context: dg.AssetExecutionContext, home: HomeResource,
                      warehouse: WarehouseResource) -> dg.MaterializeResult:
    """One CSV audience per RFM segment in exports/rfm_segments/, email-consented customers only."""
    started_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    members = warehouse.warehouse.query_df("""
        select rfm.customer_id, contacts.email, contacts.first_name, contacts.last_name,
               contacts.country, contacts.has_email_consent, rfm.rfm_segment,
               clusters.cluster_name
        from marts.customer_rfm as rfm
        left join marts.customer_contacts as contacts using (customer_id)
        left join ml.customer_clusters as clusters using (customer_id)
    """)
    out_dir = home.home.exports / "rfm_segments"
    report = write_segment_files(members, out_dir, context.run_id)
    finished_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)

    segment_sizes = members.groupby("rfm_segment").size()
    runs = pd.DataFrame([{
        "run_id": context.run_id, "destination": "file", "audience_key": f"rfm_{key}",
        "n_members": int(segment_sizes[audience["segment"]]), "n_sent": audience["rows"],
        "n_skipped": int(segment_sizes[audience["segment"]]) - audience["rows"],
        "started_at": started_at, "finished_at": finished_at, "status": "succeeded",
    } for key, audience in report["audiences"].items()])
    with warehouse.warehouse.transaction() as con:
        con.execute("create schema if not exists activation")
        con.execute(SYNC_RUNS_DDL)
        if len(runs):
            con.register("_runs", runs)
            con.execute("insert into activation.sync_runs by name select * from _runs")
    context.log.info(f"exported {report['exported']} of {report['members']} RFM members "
                     f"({report['skipped_no_email_consent']} without email consent)")
    return dg.MaterializeResult(metadata={
        "folder": dg.MetadataValue.path(str(out_dir)),
        "exported": dg.MetadataValue.int(report["exported"]),
        "skipped_no_email_consent": dg.MetadataValue.int(report["skipped_no_email_consent"]),
        "rows_per_audience": dg.MetadataValue.md(
            "| audience | rows |\n|---|---|\n" + "\n".join(
                f"| {a['segment']} | {a['rows']} |" for a in report["audiences"].values())),
    })
