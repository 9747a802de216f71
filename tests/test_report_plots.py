"""The pictures in the Dagster UI: the segment mix on `marts/segment_summary` (segments/report.py,
drawn from the mart's rows by defs/transform/table_metadata.py), the models' plots (drawn from
what the evaluation computed, ml/registry.py) and PNGs as Markdown metadata."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import duckdb
import pandas as pd
from PIL import Image

from core.plots import PNG_SIGNATURE, png_bytes
from dagster_project.defs.transform.table_metadata import table_metadata
from dagster_project.plots import png_markdown
from segments.report import segment_mix_figure

SUMMARY = pd.DataFrame({
    "segment_key": ["rfm_champions", "rfm_lost", "rule_rainy", "ml_cluster_0", "predictive_top"],
    "segment_name": ["Champions", "Lost", "Rainy today", "High-value loyal", "Top value"],
    "segment_type": ["rfm", "rfm", "rule", "ml", "predictive"],
    "n_customers": [120, 45, 300, 80, 20],
    "n_reachable_email": [90, 30, 210, 60, 15],
    "n_reachable_ads": [70, 20, 200, 40, None],
    "change_vs_day_before": [3, -2, None, 0, None],
    "change_vs_week_before": [-10, 5, None, 12, None],
})


def _bars(fig) -> dict[str, float]:
    """The width of every bar the figure drew, by its gid (`members:<segment_key>`, ...)."""
    return {patch.get_gid(): patch.get_width() for ax in fig.axes for patch in ax.patches
            if patch.get_gid()}


def decoded_png(markdown: str) -> bytes:
    """The PNG of a Markdown image with a base64 data URI."""
    [data] = re.findall(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)
    return base64.b64decode(data)


def test_each_segments_bars_are_its_members_reach_and_changes():
    bars = _bars(segment_mix_figure(SUMMARY))
    for row in SUMMARY.itertuples():
        assert bars[f"members:{row.segment_key}"] == row.n_customers
        assert bars[f"email:{row.segment_key}"] == row.n_reachable_email
    assert bars["ads:rfm_champions"] == 70 and "ads:predictive_top" not in bars  # no figure
    assert bars["day:rfm_lost"] == -2 and bars["week:ml_cluster_0"] == 12
    # no bar where the membership history does not reach back that far
    assert not any(key in bars for key in ("day:rule_rainy", "week:rule_rainy",
                                           "day:predictive_top"))


def test_without_history_the_change_panel_says_so():
    first = SUMMARY.assign(change_vs_day_before=None, change_vs_week_before=None)
    change_ax = segment_mix_figure(first).axes[1]
    assert not any(patch.get_gid() for patch in change_ax.patches)
    assert any("no membership history yet" in text.get_text() for text in change_ax.texts)
    assert not any("history" in text.get_text()
                   for text in segment_mix_figure(SUMMARY).axes[1].texts)


def test_segments_are_grouped_by_type_largest_first():
    fig = segment_mix_figure(SUMMARY)
    labels = [tick.get_text() for tick in fig.axes[0].get_yticklabels()]
    assert labels == ["rfm (2)", "Champions", "Lost", "rule (1)", "Rainy today", "ml (1)",
                      "High-value loyal", "predictive (1)", "Top value"]


def test_a_figure_becomes_a_small_png_and_a_markdown_image():
    png = png_bytes(segment_mix_figure(SUMMARY, "Segment mix as of 2026-11-01"))
    assert png.startswith(PNG_SIGNATURE) and 5_000 < len(png) < 150_000
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size[0] == 1100  # 11 in at 100 dpi
    markdown = png_markdown(png, "segment mix", "caption").value
    assert markdown.startswith("caption\n\n![segment mix](data:image/png;base64,")
    assert decoded_png(markdown) == png


def test_segment_summary_gets_the_plot_of_its_rows_and_a_file(tmp_path: Path):
    """table_metadata draws marts.segment_summary's own rows: the bars match the table."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.register("_s", SUMMARY)
        con.execute("create table marts.segment_summary as select *, date '2026-11-01' as "
                    "as_of_date, n_customers / 1000 as share_of_customers, 0.0 as net_revenue, "
                    "0.0 as avg_order_value from _s")
    node = {"unique_id": "model.segmenta.segment_summary", "resource_type": "model",
            "name": "segment_summary", "alias": "segment_summary", "schema": "marts",
            "config": {"materialized": "table"}, "columns": {}}
    metadata = table_metadata(path, [node], tmp_path / "reports")[node["unique_id"]]
    png = decoded_png(metadata["segment_mix_plot"].value)
    assert png.startswith(PNG_SIGNATURE) and len(png) < 150_000
    written = Path(metadata["segment_mix_plot_path"].value)
    assert written == tmp_path / "reports" / "segment_mix.png" and written.read_bytes() == png
    assert "preview" in metadata  # the table is still there


def test_the_model_plots_draw_the_evaluations_figures():
    from ml import registry
    from ml.clv import HoldoutReport

    evaluation = pd.DataFrame({"ndcg@10": [0.31, 0.22, 0.18], "hit_rate@10": [0.6, 0.5, 0.4]},
                              index=["shipped", "popularity", "item-kNN"])
    fig = registry.comparison_plot(evaluation, "shipped")
    for ax, metric in zip(fig.axes, ["ndcg@10", "hit_rate@10"], strict=True):
        assert [bar.get_width() for bar in ax.patches] == evaluation[metric].tolist()
        assert ax.get_title() == metric

    by_frequency = pd.DataFrame({"customers": [50, 20, 5], "predicted": [0.2, 0.9, 1.7],
                                 "actual": [0.25, 0.8, 2.0]}, index=[0, 1, 2])
    report = HoldoutReport({"holdout_weeks": 13.0, "holdout_purchases_predicted": 37.0,
                            "holdout_purchases_actual": 39.0}, by_frequency)
    [actual, predicted] = registry.holdout_plot(report).axes[0].get_lines()
    assert list(actual.get_ydata()) == [0.25, 0.8, 2.0]
    assert list(predicted.get_ydata()) == [0.2, 0.9, 1.7]


def test_an_older_rgba_png_becomes_a_palette_png_and_a_palette_png_stays():
    from matplotlib.figure import Figure

    from core.plots import compact_png

    fig = Figure(figsize=(6, 3))
    fig.subplots().barh(["a", "b"], [3, 5])
    rendered = io.BytesIO()
    fig.savefig(rendered, format="png", dpi=100)  # as mlflow.log_figure wrote them: RGBA
    rgba = rendered.getvalue()
    compact = compact_png(rgba)
    with Image.open(io.BytesIO(compact)) as image:
        assert image.mode == "P" and image.size == (600, 300)
    assert len(compact) < len(rgba) and compact_png(compact) == compact
