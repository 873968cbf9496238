from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from integrations.connectors.base import Connector
from integrations.connectors.erp.settings import SETTINGS
from integrations.exceptions import ConnectorConfigurationError
from integrations.http import http_request
from integrations.settings_schema import Schema

if TYPE_CHECKING:
    from integrations.models import Connection


def auth_headers(connection: Connection) -> dict[str, str]:
    """Bearer token, or HTTP Basic from username/password."""
    import base64

    if token := connection.credential("token"):
        return {"Authorization": f"Bearer {token}"}
    user, password = connection.credential("username"), connection.credential("password")
    if user and password:
        return {
            "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        }
    raise ConnectorConfigurationError(
        f"connection {connection.name} needs credentials token, or username and password"
    )


class ErpConnector(Connector):
    key = "erp"
    display_name = "ERP"
    accepts_webhooks = False
    credential_keys = ("token",)
    settings_schema: ClassVar[Schema] = Schema(SETTINGS)

    def test_connection(self, connection: Connection) -> str:
        if not connection.base_url:
            raise ConnectorConfigurationError(f"connection {connection.name} has no base URL")
        path = connection.settings.get("health_path", "/")
        response = http_request(
            connection,
            "GET",
            connection.base_url.rstrip("/") + path,
            operation="test",
            headers=auth_headers(connection),
        )
        return f"ERP answered HTTP {response.status_code}"
