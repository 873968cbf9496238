"""Builds the official SDK client for one Stripe connection (the only SDK entry point)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import stripe

from integrations.connectors.stripe.constants import API_VERSION
from integrations.exceptions import ConnectorConfigurationError

if TYPE_CHECKING:
    from integrations.models import Connection


def build_client(connection: Connection) -> stripe.StripeClient:
    api_key = connection.credential("api_key")
    if not api_key:
        raise ConnectorConfigurationError(f"connection {connection.name} has no api_key")
    options: dict = {
        "stripe_version": connection.settings.get("api_version", API_VERSION),
        # StripeClient retries nothing unless told; our own job retries sit on top.
        "max_network_retries": int(connection.settings.get("max_network_retries", 2)),
        "http_client": stripe.RequestsClient(timeout=30),
    }
    if connection.base_url:
        options["base_addresses"] = {"api": connection.base_url.rstrip("/")}
    return stripe.StripeClient(api_key, **options)
