from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from integrations.connectors.base import ChangeFingerprint, Connector, ParsedEvent, PollStore
from integrations.connectors.znode import mapping, sync, webhooks
from integrations.connectors.znode.client import ZnodeClient
from integrations.connectors.znode.constants import (
    AUTHORIZATION_META,
    SIGNATURE_META,
    SUPPORTED_EVENTS,
)
from integrations.connectors.znode.settings import SCHEMA
from integrations.kernel.settings import Schema

if TYPE_CHECKING:
    from integrations.kernel.types import Connection


class ZnodeConnector(Connector):
    key = "znode"
    display_name = "Znode"
    supported_events = SUPPORTED_EVENTS
    signature_headers = (AUTHORIZATION_META, SIGNATURE_META)
    credential_keys = ("domain_name", "domain_key")
    settings_schema: ClassVar[Schema] = SCHEMA
    supports_polling = True

    def verify(self, *, body: bytes, meta: Mapping[str, str], secrets: list[str]) -> None:
        webhooks.verify(body=body, meta=meta, secrets=secrets)

    def parse(self, body: bytes) -> ParsedEvent:
        return webhooks.parse(body)

    def change_fingerprint(
        self, event_type: str, payload: dict[str, Any]
    ) -> ChangeFingerprint | None:
        return mapping.change_fingerprint(event_type, payload)

    def event_facts(self, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        return mapping.event_facts(event_type, payload)

    def poll_every_minutes(self, connection: Connection) -> int | None:
        return sync.poll_every_minutes(connection)

    def poll(self, connection: Connection, store: PollStore, *, now: datetime) -> None:
        sync.poll(connection, store, now=now)

    def client(self, connection: Connection) -> ZnodeClient:
        return ZnodeClient(connection)

    def test_connection(self, connection: Connection) -> str:
        states = connection.client().order_states()
        return f"Znode answered; {len(states)} order states"
