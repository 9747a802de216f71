"""Activation: sync audiences (segment members) to CRM and ad platforms, sending only changes.

- `normalize`: per-platform normalization and SHA-256 hashing of identifiers.
- `destinations`: one client per platform behind the `Destination` contract in `destinations.base`.
- `engine`: the destination-independent sync engine (diff, batches, retries, state, audit log).
- `emulators`: small real HTTP servers speaking each platform's API, for tests and the demo.
"""
