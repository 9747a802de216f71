"""The file destination: one CSV per audience, swapped in atomically, plus a sync report."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pandas as pd

FILE_COLUMNS = ["customer_id", "email", "first_name", "last_name", "country", "rfm_segment",
                "cluster_name"]


def slug(name: str) -> str:
    """A file-name-safe key for a segment name: "Can't Lose Them" -> "cant_lose_them"."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower().replace("'", "")).strip("_")


def email_audience(members: pd.DataFrame) -> pd.DataFrame:
    """Members who may be emailed: consent given and not erased (erased rows have no contact)."""
    consented = members["has_email_consent"].fillna(False).astype(bool)
    reachable = members["email"].notna()
    return members[consented & reachable]


def write_segment_files(members: pd.DataFrame, out_dir: Path, run_id: str) -> dict:
    """Write `<segment>.csv` per RFM segment and `sync_report.json` into `out_dir`, atomically.

    The folder is built next to the old one and swapped in with renames, so a reader never sees
    half an export and a failed run leaves the previous export in place.
    """
    audience = email_audience(members)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    building = out_dir.with_name(f".{out_dir.name}.building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir()
    per_audience = {}
    for segment, rows in sorted(audience.groupby("rfm_segment"), key=lambda item: item[0]):
        key = slug(str(segment))
        rows.sort_values("customer_id")[FILE_COLUMNS].to_csv(building / f"{key}.csv", index=False)
        per_audience[key] = {"segment": segment, "rows": len(rows)}
    report = {
        "run_id": run_id,
        "destination": "file",
        "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "members": len(members),
        "exported": len(audience),
        "skipped_no_email_consent": len(members) - len(audience),
        "audiences": per_audience,
    }
    (building / "sync_report.json").write_text(json.dumps(report, indent=2) + "\n")
    retired = out_dir.with_name(f".{out_dir.name}.retired")
    shutil.rmtree(retired, ignore_errors=True)
    if out_dir.exists():
        out_dir.rename(retired)
    building.rename(out_dir)
    shutil.rmtree(retired, ignore_errors=True)
    return report
