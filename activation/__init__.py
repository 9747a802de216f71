"""Activation: sync audiences (segment members) to CRM and ad platforms, sending only changes.

- `audiences`: the audiences YAML (which segment goes where, with which fields and holdout).
- `engine`: one sync of one audience at one destination, as a short story over
  `plan` (desired set and diff, batches), `delivery` (sending with retries and splits),
  `state` (confirmed state, the written plan, resuming a killed run) and `audit` (scrubbing).
- `normalize`: per-platform normalization and SHA-256 hashing of identifiers.
- `destinations`: one client per platform behind the `Destination` contract in `destinations.base`.
- `emulators`: small real HTTP servers speaking each platform's API, for tests and the demo.
- `uplift`: `marts.audience_uplift`, synced vs holdout customers since the first sync.
"""
