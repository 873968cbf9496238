"""Settings of a Stripe connection (``Connection.settings``)."""

from __future__ import annotations

from integrations.connectors.stripe.constants import API_VERSION
from integrations.kernel.settings import Setting

SETTINGS = (
    Setting(
        "api_version",
        "str",
        API_VERSION,
        "Stripe API version sent with every request.",
    ),
    Setting(
        "max_network_retries",
        "int",
        2,
        "Retries the Stripe SDK makes on network errors, with the same idempotency key.",
        min=0,
        max=10,
    ),
)
