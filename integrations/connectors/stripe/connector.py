from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings

from integrations.connectors.base import ChangeFingerprint, Connector, ParsedEvent
from integrations.connectors.stripe import mapping, webhooks
from integrations.connectors.stripe.client import StripeGateway
from integrations.connectors.stripe.constants import SUPPORTED_EVENTS
from integrations.connectors.stripe.settings import SETTINGS
from integrations.kernel.settings import Schema

if TYPE_CHECKING:
    from integrations.kernel.types import Connection


class StripeConnector(Connector):
    key = "stripe"
    display_name = "Stripe"
    supported_events = SUPPORTED_EVENTS
    signature_headers = (webhooks.SIGNATURE_META,)
    credential_keys = ("api_key",)
    settings_schema: ClassVar[Schema] = Schema(SETTINGS)

    def verify(self, *, body: bytes, meta: Mapping[str, str], secrets: list[str]) -> None:
        webhooks.verify(
            body=body,
            meta=meta,
            secrets=secrets,
            tolerance=settings.INTEGRATIONS["STRIPE_WEBHOOK_TOLERANCE"],
        )

    def parse(self, body: bytes) -> ParsedEvent:
        return webhooks.parse(body)

    def event_facts(self, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        return mapping.event_facts(payload)

    def change_fingerprint(
        self, event_type: str, payload: dict[str, Any]
    ) -> ChangeFingerprint | None:
        """``customer.created``/``customer.updated``: the customer (``customer:<id>``)
        and a hash of its profile and default payment method, so the echo of the
        two-way sync's own write makes no job. Every other event routes as before."""
        return mapping.customer_change_fingerprint(event_type, payload)

    def client(self, connection: Connection) -> StripeGateway:
        return StripeGateway(connection)

    def test_connection(self, connection: Connection) -> str:
        balance = connection.client().balance_retrieve()
        available = ", ".join(
            f"{b['amount']} {b['currency']}" for b in balance.get("available", [])
        )
        return f"Stripe answered; available balance: {available or 'none'}"
