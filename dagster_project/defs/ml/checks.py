"""Non-blocking checks on the ML outputs (severity WARN), one step after the models score:

- `scored_once`: every eligible customer has a score, exactly once (for the recommendations:
  a list, no rank twice), and nobody who is not eligible;
- `version_stamped`: every row names its model and a model version;
- `champion_resolved`: the model's `@champion` alias resolves in the MLflow registry and the
  rows were scored by that version.

The models' own `champion` check says whether this run trained, promoted or kept a champion;
these say whether the table written is whole and traceable.
"""

from dataclasses import dataclass

import dagster as dg
import duckdb

from dagster_project.resources import MlflowResource, WarehouseResource


@dataclass(frozen=True)
class MlOutput:
    """An ML output table: its model, who must be scored, and what makes a row unique."""

    table: str
    model: str
    eligible_sql: str
    eligible: str
    row_key: tuple[str, ...] = ("customer_id",)


ML_OUTPUTS: dict[str, MlOutput] = {
    "customer_clusters": MlOutput(
        "ml.customer_clusters", "customer_segmenter",
        "select customer_id from marts.customer_360 where n_orders > 0 or n_sessions_lifetime > 0",
        "every customer who visited or bought (marts.customer_360)"),
    "customer_clv": MlOutput(
        "ml.customer_clv", "customer_lifetime_value",
        "select distinct customer_id from marts.fct_orders where is_completed and "
        "net_revenue > 0 and customer_id is not null and customer_id not like 'erased-%'",
        "every customer with a completed paid order (marts.fct_orders)"),
    "customer_recommendations": MlOutput(
        "ml.customer_recommendations", "product_recommender",
        "select customer_id from marts.dim_customers where not is_deleted",
        "every customer not deleted (marts.dim_customers)", ("customer_id", "rank")),
}
SCORED_ONCE, VERSION_STAMPED, CHAMPION_RESOLVED = "scored_once", "version_stamped", \
    "champion_resolved"


def _key(output: MlOutput) -> dg.AssetKey:
    return dg.AssetKey(output.table.split("."))


def scored_once(con: duckdb.DuckDBPyConnection, output: MlOutput,
                champion: str | None) -> dg.AssetCheckResult:
    """Eligible customers without a score, scores of customers not eligible, duplicate rows.
    Without a champion the table is empty by design (the model's `champion` check and
    `champion_resolved` fail): not counted again here."""
    key = ", ".join(output.row_key)
    missing, extra, duplicates, rows = con.execute(f"""
        with eligible as ({output.eligible_sql}),
        scored as (select distinct customer_id from {output.table})
        select
            (select count(*) from eligible anti join scored using (customer_id)),
            (select count(*) from scored anti join eligible using (customer_id)),
            (select count(*) - count(distinct ({key})) from {output.table}),
            (select count(*) from {output.table})
    """).fetchone()
    if champion is None and rows == 0:
        missing = 0  # no champion: nobody is scored, said by the champion checks
    problems = [f"{n} {text}" for n, text in ((missing, "eligible customers without a score"),
                                              (extra, "scored customers not eligible"),
                                              (duplicates, f"duplicate rows (by {key})")) if n]
    return dg.AssetCheckResult(
        asset_key=_key(output), check_name=SCORED_ONCE, passed=not problems,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(problems) or (
            f"no {output.model}@champion: the table is empty by design" if champion is None
            else f"{output.eligible}: scored, once"),
        metadata={"rows": dg.MetadataValue.int(rows),
                  "missing": dg.MetadataValue.int(missing),
                  "not_eligible": dg.MetadataValue.int(extra),
                  "duplicates": dg.MetadataValue.int(duplicates)})


def stamped_versions(con: duckdb.DuckDBPyConnection, output: MlOutput) -> tuple[set[str], int]:
    """The model versions the rows carry, and the rows without the model's name or a version."""
    versions = {str(row[0]) for row in con.execute(
        f"select distinct model_version from {output.table} where model_version is not null"
    ).fetchall()}
    unstamped = con.execute(
        f"select count(*) from {output.table} where model_version is null "
        f"or model_name is distinct from ?", [output.model]).fetchone()[0]
    return versions, unstamped


def version_stamped(versions: set[str], unstamped: int, output: MlOutput) -> dg.AssetCheckResult:
    """Passes when no row lacks the model's name or a version."""
    if unstamped:
        description = f"{unstamped} rows without {output.model} and a version"
    elif versions:
        description = f"every row stamped {output.model} v{', v'.join(sorted(versions))}"
    else:
        description = "no rows"
    return dg.AssetCheckResult(
        asset_key=_key(output), check_name=VERSION_STAMPED, passed=unstamped == 0,
        severity=dg.AssetCheckSeverity.WARN, description=description,
        metadata={"versions": dg.MetadataValue.text(", ".join(sorted(versions)) or "none"),
                  "unstamped_rows": dg.MetadataValue.int(unstamped)})


def champion_resolved(champion: str | None, versions: set[str],
                      output: MlOutput) -> dg.AssetCheckResult:
    """Passes when the alias resolves and every row was scored by that version."""
    if champion is None:
        description = f"{output.model}@champion does not resolve in the registry"
    elif versions - {champion}:
        description = (f"rows scored by v{', v'.join(sorted(versions - {champion}))}, not the "
                       f"champion v{champion}")
    else:
        description = f"{output.model}@champion resolves to v{champion}, the version scored"
    return dg.AssetCheckResult(
        asset_key=_key(output), check_name=CHAMPION_RESOLVED,
        severity=dg.AssetCheckSeverity.WARN,
        passed=champion is not None and not versions - {champion}, description=description,
        metadata={"champion_version": dg.MetadataValue.text(champion or "none")})


def _spec(name: str, check: str, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(check, asset=dg.AssetKey(["ml", name]), blocking=False,
                             description=description)


SPECS = [spec for name, output in ML_OUTPUTS.items() for spec in (
    _spec(name, SCORED_ONCE, f"{output.eligible.capitalize()} has a score in {output.table}, "
                             "exactly once, and nobody else (WARN, non-blocking)."),
    _spec(name, VERSION_STAMPED, f"Every row of {output.table} names {output.model} and its "
                                 "model version (WARN, non-blocking)."),
    _spec(name, CHAMPION_RESOLVED, f"{output.model}@champion resolves in the MLflow registry "
                                   "and is the version that scored the rows (WARN, "
                                   "non-blocking)."))]


@dg.multi_asset_check(specs=SPECS, name="ml_output_checks", can_subset=True, pool="duckdb",
                      description="The ML outputs are whole and traceable: scored once, "
                                  "stamped, by the champion.")
def ml_output_checks(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                     mlflow: MlflowResource):
    """The checks of the ML outputs selected in this run."""
    from ml.registry import champion_version

    mlflow.configure()
    selected = context.selected_asset_check_keys
    with warehouse.warehouse.connect() as con:
        for name, output in ML_OUTPUTS.items():
            key = dg.AssetKey(["ml", name])
            wanted = {check.name for check in selected if check.asset_key == key}
            if not wanted:
                continue
            try:
                champion = champion_version(output.model)
                versions, unstamped = stamped_versions(con, output)
                results = [scored_once(con, output, champion),
                           version_stamped(versions, unstamped, output),
                           champion_resolved(champion, versions, output)]
            except duckdb.Error as exc:  # a table missing: said so, the run goes on
                results = [dg.AssetCheckResult(
                    asset_key=key, check_name=check, passed=False, severity=dg.AssetCheckSeverity.WARN,
                    description=f"could not check {output.table}: {str(exc).splitlines()[0]}")
                    for check in (SCORED_ONCE, VERSION_STAMPED, CHAMPION_RESOLVED)]
            yield from (result for result in results if result.check_name in wanted)
