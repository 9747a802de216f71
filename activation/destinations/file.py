"""The file destination (the embedded default): one CSV or Parquet file per audience.

`exports/audiences/<audience>.<csv|parquet>` always holds the audience's confirmed members (email
and the audience's fields, for the store's own tools), rewritten atomically after every batch, so
the file and `activation.sync_state` never disagree by more than the batch in flight. The file
holds emails: it is created readable and writable by its owner only (0600), in a 0700 folder.
Target settings: `format` (csv, the default, or parquet).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from activation.destinations.base import Batch, BatchOutcome, Contact, Destination, Row


class FileDestination(Destination):
    platform = "file"
    consent = "email"
    max_batch = 1_000_000
    max_remove_batch = 1_000_000

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        self._members: dict[str, dict] | None = None

    def path(self, target: dict) -> Path:
        fmt = target.get("format", "csv")
        if fmt not in ("csv", "parquet"):
            raise ValueError(f"file destination: format must be csv or parquet, not {fmt!r}")
        return self.folder / f"{target['audience_key']}.{fmt}"

    def payload(self, contact: Contact, fields: list[str]) -> dict | None:
        if not contact.email:
            return None
        return {"email": contact.email.strip().lower(),
                **{name: getattr(contact, name, None) if name in ("first_name", "last_name",
                                                                    "country")
                   else contact.properties.get(name) for name in fields}}

    def _load(self, target: dict) -> dict[str, dict]:
        if self._members is None:
            path = self.path(target)
            if not path.exists():
                self._members = {}
            else:
                frame = (pd.read_parquet(path) if path.suffix == ".parquet"
                         else pd.read_csv(path, dtype=str, keep_default_na=False))
                self._members = {str(r.pop("customer_id")): r
                                 for r in frame.to_dict("records")}
        return self._members

    def _write(self, target: dict) -> None:
        path = self.path(target)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        members = self._load(target)
        frame = pd.DataFrame([{"customer_id": c, **p} for c, p in sorted(members.items())])
        if frame.empty:
            frame = pd.DataFrame({"customer_id": []})
        partial = path.with_name(f".{path.name}.partial")
        partial.unlink(missing_ok=True)
        # the file holds emails: readable by its owner only, from its first byte
        with os.fdopen(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "wb") as out:
            if path.suffix == ".parquet":
                frame.to_parquet(out, index=False)
            else:
                frame.to_csv(out, index=False)
        os.replace(partial, path)

    def open(self, target: dict, run_id: str, full_refresh: bool) -> None:
        self._members = None

    def close(self, target: dict, succeeded: bool) -> None:
        # a sync with nothing to send still leaves the file of its (maybe empty) audience
        if succeeded and not self.path(target).exists():
            self._write(target)

    def add(self, target: dict, rows: list[Row], batch: Batch) -> BatchOutcome:
        members = self._load(target)
        for row in rows:
            members[row.customer_id] = row.payload
        self._write(target)
        return BatchOutcome()

    def remove(self, target: dict, rows: list[Row], batch: Batch) -> BatchOutcome:
        members = self._load(target)
        for row in rows:
            members.pop(row.customer_id, None)
        self._write(target)
        return BatchOutcome()
