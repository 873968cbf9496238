from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING

from integrations.connectors.base import Connector, ParsedEvent
from integrations.connectors.znode import webhooks
from integrations.connectors.znode.constants import (
    AUTHORIZATION_META,
    SIGNATURE_META,
    SUPPORTED_EVENTS,
)
from integrations.exceptions import ConnectorConfigurationError
from integrations.http import http_request

if TYPE_CHECKING:
    from integrations.models import Connection


def basic_auth_header(connection: Connection) -> str:
    """Znode 9.x Basic auth: base64 of ``domain|key`` (a pipe, not a colon)."""
    domain, key = connection.credential("domain_name"), connection.credential("domain_key")
    if not domain or not key:
        raise ConnectorConfigurationError(
            f"connection {connection.name} needs credentials domain_name and domain_key"
        )
    return "Basic " + base64.b64encode(f"{domain}|{key}".encode()).decode()


class ZnodeConnector(Connector):
    key = "znode"
    display_name = "Znode"
    supported_events = SUPPORTED_EVENTS
    signature_headers = (AUTHORIZATION_META, SIGNATURE_META)
    credential_keys = ("domain_name", "domain_key")

    def verify(self, *, body: bytes, meta: Mapping[str, str], secrets: list[str]) -> None:
        webhooks.verify(body=body, meta=meta, secrets=secrets)

    def parse(self, body: bytes) -> ParsedEvent:
        return webhooks.parse(body)

    def test_connection(self, connection: Connection) -> str:
        if not connection.base_url:
            raise ConnectorConfigurationError(f"connection {connection.name} has no base URL")
        headers = {"Authorization": basic_auth_header(connection), "Accept": "application/json"}
        if store := connection.settings.get("store_domain"):
            headers["Znode-DomainName"] = store
        response = http_request(
            connection,
            "GET",
            connection.base_url.rstrip("/") + "/orderstate/list",
            operation="test",
            headers=headers,
        )
        if response.status_code == 204:
            return "Znode answered; no order states defined"
        states = response.json().get("OrderStates") or []
        return f"Znode answered; {len(states)} order states"
