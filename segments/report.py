"""The segment mix as a picture: every segment of `marts.segment_summary`, grouped by type, its
members and how many of them each channel may reach, and the change in members since the day
and the week before. Drawn from the mart's rows (the caller reads them); no Dagster here."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

COLUMNS = ["segment_key", "segment_name", "segment_type", "n_customers", "n_reachable_email",
           "n_reachable_ads", "change_vs_day_before", "change_vs_week_before"]
TYPE_ORDER = ("rfm", "rule", "ml", "predictive")
TYPE_COLORS = {"rfm": "#4c72b0", "rule": "#55a868", "ml": "#8172b2", "predictive": "#c44e52"}
OTHER_COLOR = "#937860"
EMAIL_COLOR, ADS_COLOR = "#222222", "#dd8452"
DAY_COLOR, WEEK_COLOR = "#64b5cd", "#8c8c8c"
ROW_INCHES = 0.2


def _ordered(summary: pd.DataFrame) -> pd.DataFrame:
    """Segments by type (TYPE_ORDER, then any other), largest first within a type."""
    order = {kind: i for i, kind in enumerate(TYPE_ORDER)}
    return (summary.assign(_type_rank=summary["segment_type"].map(order).fillna(len(order)))
            .sort_values(["_type_rank", "segment_type", "n_customers", "segment_name",
                          "segment_key"], ascending=[True, True, False, True, True])
            .drop(columns="_type_rank").reset_index(drop=True))


def _number(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def segment_mix_figure(summary: pd.DataFrame, title: str = "Segment mix") -> Figure:
    """Horizontal bars, one row per segment, grouped by segment type (a heading row each):

    - left, the members (a pale bar as long as `n_customers`, gid `members:<segment_key>`) with
      the members reachable by email and by ads as two thin bars inside it (gids
      `email:<key>`, `ads:<key>`), and the count and share at its end;
    - right, the change in members since the day before and the week before (gids
      `day:<key>`, `week:<key>`; no bar and "–" where the history does not reach back).
    """
    rows = _ordered(summary[COLUMNS])
    labels: list[tuple[str, bool]] = []  # (label, is_heading), top to bottom
    positions: list[int] = []
    for kind, group in rows.groupby("segment_type", sort=False):
        labels.append((f"{kind} ({len(group)})", True))
        for _ in range(len(group)):
            positions.append(len(labels))
            labels.append(("", False))
    for position, name in zip(positions, rows["segment_name"], strict=True):
        labels[position] = (str(name), False)
    height = ROW_INCHES * len(labels) + 1.3
    fig = Figure(figsize=(11, max(height, 2.5)))
    members_ax, change_ax = fig.subplots(1, 2, sharey=True,
                                         gridspec_kw={"width_ratios": [3, 1]})
    largest = float(rows["n_customers"].max()) if len(rows) else 1.0
    for position, row in zip(positions, rows.itertuples(index=False), strict=True):
        y = -position
        key = row.segment_key
        color = TYPE_COLORS.get(row.segment_type, OTHER_COLOR)
        members = float(row.n_customers)
        bar = members_ax.barh(y, members, height=0.8, color=color, alpha=0.35)
        bar.patches[0].set_gid(f"members:{key}")
        for offset, column, channel, reach_color in (
                (0.18, "n_reachable_email", "email", EMAIL_COLOR),
                (-0.18, "n_reachable_ads", "ads", ADS_COLOR)):
            reach = _number(getattr(row, column))
            if reach is not None:
                thin = members_ax.barh(y + offset, reach, height=0.28, color=reach_color)
                thin.patches[0].set_gid(f"{channel}:{key}")
        members_ax.text(members + largest * 0.01, y, f"{members:,.0f}", va="center",
                        fontsize=7)
        for offset, column, period, change_color in (
                (0.2, "change_vs_day_before", "day", DAY_COLOR),
                (-0.2, "change_vs_week_before", "week", WEEK_COLOR)):
            change = _number(getattr(row, column))
            if change is None:
                change_ax.text(0, y + offset, "–", va="center", ha="center", fontsize=6,
                               color=change_color)
            else:
                moved = change_ax.barh(y + offset, change, height=0.36, color=change_color)
                moved.patches[0].set_gid(f"{period}:{key}")
    ticks = [-i for i in range(len(labels))]
    members_ax.set_yticks(ticks, [label for label, _ in labels], fontsize=7)
    for tick, (_, heading) in zip(members_ax.get_yticklabels(), labels, strict=True):
        if heading:
            tick.set_fontweight("bold")
    members_ax.set_ylim(-len(labels) + 0.4, 0.6)
    members_ax.set_xlim(0, largest * 1.12 or 1)
    members_ax.set_xlabel("customers")
    members_ax.grid(axis="x", alpha=0.3)
    handles = [Patch(color=TYPE_COLORS.get(kind, OTHER_COLOR), alpha=0.35,
                     label=f"members ({kind})") for kind in rows["segment_type"].unique()]
    handles += [Patch(color=EMAIL_COLOR, label="reachable by email"),
                Patch(color=ADS_COLOR, label="reachable by ads")]
    members_ax.legend(handles=handles, fontsize=7, loc="lower right")
    if rows[["change_vs_day_before", "change_vs_week_before"]].isna().all(axis=None):
        change_ax.text(0.5, 0.5, "no membership history yet:\nchanges show from\nthe next refresh",
                       transform=change_ax.transAxes, ha="center", va="center", fontsize=8,
                       color="#444444", bbox={"facecolor": "white", "edgecolor": "none"})
        change_ax.set_xlim(-1, 1)
        change_ax.set_xticks([])
    change_ax.axvline(0, color="#444444", linewidth=0.8)
    change_ax.set_xlabel("change in members")
    change_ax.grid(axis="x", alpha=0.3)
    change_ax.legend(handles=[Patch(color=DAY_COLOR, label="vs day before"),
                              Patch(color=WEEK_COLOR, label="vs week before")],
                     fontsize=7, loc="lower right")
    change_ax.tick_params(axis="y", left=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
