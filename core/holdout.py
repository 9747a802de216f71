"""The holdout arm of a customer in an audience: one deterministic hash, shared by every layer.

`activation` splits an audience's members with it when it syncs, and the sample generator
(`generator.campaigns`) gives a simulated campaign's effect to the very same customers, so a
campaign's true effect and `marts.audience_uplift`'s estimate are about the same two arms.
"""

from __future__ import annotations

import hashlib


def in_holdout(audience_key: str, customer_id: str, share: float) -> bool:
    """Deterministic: the same customer is in the same arm of an audience on every run.

    The first 8 bytes of sha256("<audience_key>:<customer_id>"), read as a fraction of 2**64,
    below `share` means the holdout; independent of anything else about the customer."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"{audience_key}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share
