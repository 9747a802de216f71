"""Destinations as Dagster resources: which client a sync uses and where its credentials come from.

Credentials come only from environment variables, read when a sync starts (so a run that syncs
nowhere needs none):

| destination | variables |
|---|---|
| file    | none (writes `SEGMENTA_HOME/exports/audiences/`) |
| webhook | `SEGMENTA_WEBHOOK_URL`, `SEGMENTA_WEBHOOK_SECRET` (HMAC key) |
| hubspot | `SEGMENTA_HUBSPOT_TOKEN` (private app token) |
| klaviyo | `SEGMENTA_KLAVIYO_API_KEY` (private key) |
| meta    | `SEGMENTA_META_ACCESS_TOKEN` (system user token) |
| google  | `SEGMENTA_GOOGLE_ACCESS_TOKEN` (OAuth token, scope datamanager) |

Each also takes `SEGMENTA_<PLATFORM>_URL` to point at another base URL (the demo emulators):
`https://`, or plain `http://` only to 127.0.0.1 or localhost.
"""

from __future__ import annotations

import os

import dagster as dg

from activation.destinations.base import Destination
from core.settings import HOME

CREDENTIALS = {
    "webhook": ["SEGMENTA_WEBHOOK_URL", "SEGMENTA_WEBHOOK_SECRET"],
    "hubspot": ["SEGMENTA_HUBSPOT_TOKEN"],
    "klaviyo": ["SEGMENTA_KLAVIYO_API_KEY"],
    "meta": ["SEGMENTA_META_ACCESS_TOKEN"],
    "google": ["SEGMENTA_GOOGLE_ACCESS_TOKEN"],
}


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise dg.Failure(f"{name} is not set: the destination's credentials come from the "
                         f"environment only. Export {name} (see README, 'Activation'), or "
                         "remove the destination from the audiences file.")
    return value


def _url(platform: str, default: str) -> str:
    """The platform's base URL: its own, or `SEGMENTA_<PLATFORM>_URL` (https://, or http:// to
    127.0.0.1/localhost only)."""
    from activation.destinations.http import checked_url

    name = f"SEGMENTA_{platform.upper()}_URL"
    try:
        return checked_url(name, os.environ.get(name) or default)
    except ValueError as exc:
        raise dg.Failure(str(exc)) from exc


class FileDestinationResource(dg.ConfigurableResource):
    """Audience files in `folder` (the embedded default destination)."""

    folder: str = str(HOME.exports / "audiences")

    def client(self) -> Destination:
        from activation.destinations.file import FileDestination
        return FileDestination(self.folder)


class WebhookResource(dg.ConfigurableResource):
    """JSON POSTs signed with HMAC-SHA256; the URL and the key come from the environment."""

    url_env: str = "SEGMENTA_WEBHOOK_URL"
    secret_env: str = "SEGMENTA_WEBHOOK_SECRET"
    timeout_seconds: float = 30.0

    def client(self) -> Destination:
        from activation.destinations.webhook import WebhookDestination
        try:
            return WebhookDestination(_env(self.url_env), _env(self.secret_env),
                                      self.timeout_seconds)
        except ValueError as exc:
            raise dg.Failure(str(exc)) from exc


class HubSpotResource(dg.ConfigurableResource):
    """HubSpot CRM: contacts upserted by email, membership of MANUAL lists."""

    token_env: str = "SEGMENTA_HUBSPOT_TOKEN"
    timeout_seconds: float = 30.0

    def client(self) -> Destination:
        from activation.destinations.hubspot import HubSpotDestination
        return HubSpotDestination(_env(self.token_env),
                                  base_url=_url("hubspot", "https://api.hubapi.com"),
                                  timeout=self.timeout_seconds)


class KlaviyoResource(dg.ConfigurableResource):
    """Klaviyo: profile bulk import jobs into lists, removals by profile id."""

    api_key_env: str = "SEGMENTA_KLAVIYO_API_KEY"
    timeout_seconds: float = 30.0

    def client(self) -> Destination:
        from activation.destinations.klaviyo import KlaviyoDestination
        return KlaviyoDestination(_env(self.api_key_env),
                                  base_url=_url("klaviyo", "https://a.klaviyo.com"),
                                  timeout=self.timeout_seconds)


class MetaResource(dg.ConfigurableResource):
    """Meta Custom Audiences: hashed multi-key rows in sessions."""

    token_env: str = "SEGMENTA_META_ACCESS_TOKEN"
    timeout_seconds: float = 30.0

    def client(self) -> Destination:
        from activation.destinations.meta import MetaDestination
        return MetaDestination(_env(self.token_env),
                               base_url=_url("meta", "https://graph.facebook.com"),
                               timeout=self.timeout_seconds)


class GoogleResource(dg.ConfigurableResource):
    """Google Data Manager API: hashed audience members with consent."""

    token_env: str = "SEGMENTA_GOOGLE_ACCESS_TOKEN"
    timeout_seconds: float = 30.0

    def client(self) -> Destination:
        from activation.destinations.google import GoogleDataManagerDestination
        return GoogleDataManagerDestination(
            _env(self.token_env), base_url=_url("google", "https://datamanager.googleapis.com"),
            timeout=self.timeout_seconds)


# destination type -> (resource key, resource): the resources hold the names of the environment
# variables, never a secret
DESTINATION_RESOURCES = {
    "file": ("file_destination", FileDestinationResource()),
    "webhook": ("webhook_destination", WebhookResource()),
    "hubspot": ("hubspot", HubSpotResource()),
    "klaviyo": ("klaviyo", KlaviyoResource()),
    "meta": ("meta", MetaResource()),
    "google": ("google_ads", GoogleResource()),
}
