"""Audiences: which segment goes to which destinations, with which fields and holdout share.

Marketers write them in YAML (`segments/audiences.yml`, or the file named by
`SEGMENTA_AUDIENCES`):

    audiences:
      - key: champions_crm                 # lowercase letters, digits and _
        segment: rfm_champions             # any segment_key of marts.segment_memberships
        fields: [first_name, top_3_recommendations]
        holdout: 0.1                       # share kept out as a control group (0 to 0.5)
        destinations:
          - file                           # a destination with no settings
          - hubspot: {list_id: "123"}      # the platform's list or audience for this audience
          - meta: {audience_id: "2384"}

`load_audiences` checks everything and names the file, the audience and the field of every
problem, so a typo fails before anything is sent.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from core.settings import PROJECT_ROOT

AUDIENCES_FILE = Path(os.environ.get("SEGMENTA_AUDIENCES")
                      or PROJECT_ROOT / "segments" / "audiences.yml")

# destination type -> (consent it needs, settings it requires)
DESTINATION_TYPES = {
    "file": ("email", []),
    "webhook": ("email", []),
    "hubspot": ("email", ["list_id"]),
    "klaviyo": ("email", ["list_id"]),
    "meta": ("ads", ["audience_id"]),
    "google": ("ads", ["operating_account_id", "user_list_id"]),
}
FIELDS = {"first_name", "last_name", "country", "rfm_segment", "segment_name",
          "predicted_value_90d", "top_3_recommendations"}
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class AudienceError(ValueError):
    """The audiences file is invalid; the message names the file, audience and field."""


@dataclass(frozen=True)
class Target:
    """One destination of an audience: `name` is unique within the audience (the type, or
    `type:label` when an audience goes twice to one platform), `params` the YAML settings."""

    name: str
    type: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Audience:
    key: str
    segment: str
    fields: tuple[str, ...] = ()
    holdout: float = 0.0
    targets: tuple[Target, ...] = ()
    description: str = ""

    @property
    def payload_fields(self) -> list[str]:
        """The field names a destination receives (`top_3_recommendations` expanded)."""
        names = []
        for name in self.fields:
            if name == "top_3_recommendations":
                names += [f"recommended_product_{i}" for i in (1, 2, 3)]
            else:
                names.append(name)
        return names


def _target(where: str, entry: object) -> Target:
    if isinstance(entry, str):
        kind, params = entry, {}
    elif isinstance(entry, dict) and len(entry) == 1:
        kind, params = next(iter(entry.items()))
        params = params or {}
        if not isinstance(params, dict):
            raise AudienceError(f"{where}: the settings of {kind!r} must be a mapping, "
                                f"e.g. {{list_id: \"123\"}}")
    else:
        raise AudienceError(f"{where}: each destination is a name (file) or a one-key mapping "
                            "(hubspot: {list_id: \"123\"})")
    label = params.pop("label", None) if isinstance(params, dict) else None
    if kind not in DESTINATION_TYPES:
        raise AudienceError(f"{where}: unknown destination {kind!r}; use one of "
                            f"{', '.join(sorted(DESTINATION_TYPES))}")
    missing = [name for name in DESTINATION_TYPES[kind][1] if not params.get(name)]
    if missing:
        raise AudienceError(f"{where}: {kind} needs {', '.join(missing)} (the id of the "
                            f"list or audience in {kind})")
    params = {k: str(v) for k, v in params.items()}
    return Target(f"{kind}:{label}" if label else kind, kind, params)


def parse_audiences(data: object, source: str = "audiences") -> list[Audience]:
    if not isinstance(data, dict) or not isinstance(data.get("audiences"), list):
        raise AudienceError(f"{source}: expected a mapping with a list under 'audiences'")
    audiences, seen = [], set()
    for index, entry in enumerate(data["audiences"], start=1):
        where = f"{source}, audience #{index}"
        if not isinstance(entry, dict):
            raise AudienceError(f"{where}: expected a mapping with key, segment, destinations")
        unknown = set(entry) - {"key", "segment", "fields", "holdout", "destinations",
                                "description"}
        if unknown:
            raise AudienceError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
        key = str(entry.get("key", ""))
        if not _KEY.match(key):
            raise AudienceError(f"{where}: key {key!r} must be lowercase letters, digits and _ "
                                "and start with a letter")
        where = f"{source}, audience {key!r}"
        if key in seen:
            raise AudienceError(f"{where}: the key is used twice")
        seen.add(key)
        segment = entry.get("segment")
        if not isinstance(segment, str) or not segment:
            raise AudienceError(f"{where}: 'segment' must name a segment_key of "
                                "marts.segment_memberships, e.g. rfm_champions")
        fields = entry.get("fields") or []
        if not isinstance(fields, list) or any(f not in FIELDS for f in fields):
            bad = [f for f in fields if f not in FIELDS] if isinstance(fields, list) else fields
            raise AudienceError(f"{where}: unknown field(s) {bad}; choose from "
                                f"{', '.join(sorted(FIELDS))}")
        holdout = entry.get("holdout", 0)
        if not isinstance(holdout, int | float) or not 0 <= holdout <= 0.5:
            raise AudienceError(f"{where}: holdout must be a share between 0 and 0.5, "
                                f"not {holdout!r}")
        destinations = entry.get("destinations")
        if not isinstance(destinations, list) or not destinations:
            raise AudienceError(f"{where}: 'destinations' must list at least one destination")
        targets = [_target(f"{where}, destination #{i}", dict(d) if isinstance(d, dict) else d)
                   for i, d in enumerate(destinations, start=1)]
        names = [t.name for t in targets]
        if len(set(names)) != len(names):
            raise AudienceError(f"{where}: a destination appears twice; give one a `label`")
        audiences.append(Audience(key, segment, tuple(fields), float(holdout), tuple(targets),
                                  str(entry.get("description", ""))))
    return audiences


def load_audiences(path: Path) -> list[Audience]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError as exc:
        raise AudienceError(f"{path}: the audiences file does not exist") from exc
    except yaml.YAMLError as exc:
        raise AudienceError(f"{path}: not valid YAML: {exc}") from exc
    return parse_audiences(data, str(path))


def check_segments(audiences: list[Audience], known: set[str], source: str) -> None:
    """Every audience's segment exists (known = the segment keys of the current run)."""
    for audience in audiences:
        if audience.segment not in known:
            close = sorted(k for k in known if audience.segment.split("_")[0] in k)[:5]
            raise AudienceError(
                f"{source}, audience {audience.key!r}: segment {audience.segment!r} is not in "
                f"marts.segment_memberships" + (f" (did you mean {', '.join(close)}?)"
                                                if close else ""))


def configured_audiences() -> list[Audience]:
    """The audiences file in use (`AUDIENCES_FILE`); none when it does not exist."""
    return load_audiences(AUDIENCES_FILE) if AUDIENCES_FILE.exists() else []
