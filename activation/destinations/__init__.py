"""Destination clients. Each implements `base.Destination`; `registry()` maps a YAML `type`."""
