from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from integrations.connectors.base import Connector
from integrations.connectors.erp.client import ErpClient, erp_client
from integrations.connectors.erp.settings import SETTINGS
from integrations.kernel.settings import Schema

if TYPE_CHECKING:
    from integrations.kernel.types import Connection


class ErpConnector(Connector):
    key = "erp"
    display_name = "ERP"
    accepts_webhooks = False
    credential_keys = ("token",)
    settings_schema: ClassVar[Schema] = Schema(SETTINGS)

    def client(self, connection: Connection) -> ErpClient:
        return erp_client(connection)

    def test_connection(self, connection: Connection) -> str:
        status = connection.client().health(connection.settings.get("health_path", "/"))
        return f"ERP answered HTTP {status}"
