"""Local emulators of every platform for a demo sync with no credentials."""

from __future__ import annotations

from activation.audiences import Audience


def demo_environment(audience_list: list[Audience]) -> tuple[dict, dict[str, str]]:
    """Start a local emulator for every platform, create the lists and audiences the audiences
    name, and point the destinations at them through the environment. Returns (emulators,
    variables to set). Used by `segmenta run --demo-destinations` so a new user sees a full sync
    with no credentials; the emulators live as long as the command."""
    from activation.emulators.google import GoogleEmulator
    from activation.emulators.hubspot import HubSpotEmulator
    from activation.emulators.klaviyo import KlaviyoEmulator
    from activation.emulators.meta import MetaEmulator
    from activation.emulators.webhook import WebhookEmulator

    emulators = {"hubspot": HubSpotEmulator(list_id=None), "klaviyo": KlaviyoEmulator(list_id=None),
                 "meta": MetaEmulator(), "google": GoogleEmulator(),
                 "webhook": WebhookEmulator(secret="demo-secret")}
    for audience in audience_list:
        for target in audience.targets:
            params = target.params
            if target.type == "hubspot":
                emulators["hubspot"].create_list(audience.key, "MANUAL", params["list_id"])
            elif target.type == "klaviyo":
                emulators["klaviyo"].create_list(params["list_id"])
            elif target.type == "meta":
                emulators["meta"].create_audience(params["audience_id"])
            elif target.type == "google":
                emulators["google"].create_user_list(
                    params["user_list_id"], params["operating_account_id"].replace("-", ""),
                    params.get("account_type", "GOOGLE_ADS"))
    for emulator in emulators.values():
        emulator.start()
    variables = {
        "SEGMENTA_HUBSPOT_URL": emulators["hubspot"].url,
        "SEGMENTA_HUBSPOT_TOKEN": emulators["hubspot"].token,
        "SEGMENTA_KLAVIYO_URL": emulators["klaviyo"].url,
        "SEGMENTA_KLAVIYO_API_KEY": emulators["klaviyo"].token,
        "SEGMENTA_META_URL": emulators["meta"].url,
        "SEGMENTA_META_ACCESS_TOKEN": emulators["meta"].token,
        "SEGMENTA_GOOGLE_URL": emulators["google"].url,
        "SEGMENTA_GOOGLE_ACCESS_TOKEN": emulators["google"].token,
        "SEGMENTA_WEBHOOK_URL": emulators["webhook"].url + "/hooks/audiences",
        "SEGMENTA_WEBHOOK_SECRET": "demo-secret",
    }
    return emulators, variables
