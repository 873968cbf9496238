from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import stripe
from django.conf import settings

from integrations.connectors.base import Connector, ParsedEvent
from integrations.connectors.stripe import webhooks
from integrations.connectors.stripe.client import build_client
from integrations.connectors.stripe.constants import SUPPORTED_EVENTS
from integrations.http import record_api_call

if TYPE_CHECKING:
    from integrations.models import Connection


class StripeConnector(Connector):
    key = "stripe"
    display_name = "Stripe"
    supported_events = SUPPORTED_EVENTS
    signature_headers = (webhooks.SIGNATURE_META,)
    credential_keys = ("api_key",)

    def verify(self, *, body: bytes, meta: Mapping[str, str], secrets: list[str]) -> None:
        webhooks.verify(
            body=body,
            meta=meta,
            secrets=secrets,
            tolerance=settings.INTEGRATIONS["STRIPE_WEBHOOK_TOLERANCE"],
        )

    def parse(self, body: bytes) -> ParsedEvent:
        return webhooks.parse(body)

    def test_connection(self, connection: Connection) -> str:
        client = build_client(connection)
        base = connection.base_url or "https://api.stripe.com"
        with record_api_call(
            connection=connection, method="GET", url=f"{base}/v1/balance", operation="test"
        ) as call:
            try:
                balance = client.v1.balance.retrieve()
            except stripe.StripeError as exc:
                call.status_code = getattr(exc, "http_status", None)
                raise
            call.status_code = 200
        available = ", ".join(
            f"{b.amount} {b.currency}" for b in (getattr(balance, "available", None) or [])
        )
        return f"Stripe answered; available balance: {available or 'none'}"
