"""Local emulators of the destination APIs: real HTTP servers on 127.0.0.1 that validate what
they receive, keep audience membership, and fail on demand (see `base.Emulator.inject`)."""
