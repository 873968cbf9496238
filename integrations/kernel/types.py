"""What the kernel and the connectors need of a connection (the engine's
``integrations.models.Connection`` satisfies it), so they never import the engine."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol


class Connection(Protocol):
    pk: int | None
    name: str
    kind: str
    base_url: str
    settings: dict[str, Any]
    rate_limit_per_second: Decimal
    enabled: bool

    def credential(self, key: str, default: str | None = None) -> str | None: ...

    def secret_list(self) -> list[str]: ...

    def client(self) -> Any: ...
