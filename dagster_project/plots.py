"""PNG images as Dagster metadata: a Markdown image with the PNG inline (base64), which the
UI's Markdown renderer shows (its sanitizer allows `data:` image sources). The base64 is stored
in Dagster's event log with every materialization, so the images are kept small: palette PNGs
of about 100 dpi (core/plots.py; sizes measured there and in the callers)."""

from __future__ import annotations

import base64

import dagster as dg


def png_markdown(png: bytes, alt: str, caption: str = "") -> dg.MetadataValue:
    """`png` as a Markdown image (`![alt](data:image/png;base64,...)`), below `caption`."""
    image = f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
    return dg.MetadataValue.md(f"{caption}\n\n{image}" if caption else image)
