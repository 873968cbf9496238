"""What a connector is: the code that knows one kind of external system.

A connector class is registered (settings ``INTEGRATIONS["CONNECTORS"]``) and is
stateless; a :class:`~integrations.models.Connection` row holds the credentials of one
configured instance. To add a system, subclass :class:`Connector` in
``integrations/connectors/<kind>/connector.py`` and implement:

* ``verify()`` — authenticate a webhook request (constant-time compares, any of the
  connection's active secrets) or raise ``WebhookVerificationError``;
* ``parse()`` — turn a verified body into a :class:`ParsedEvent`, or raise
  ``WebhookPayloadError``; no database access;
* ``test_connection()`` — one cheap authenticated read, returning a short summary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from integrations.exceptions import WebhookPayloadError, WebhookVerificationError

if TYPE_CHECKING:
    from integrations.models import Connection


@dataclass(frozen=True)
class ParsedEvent:
    """A webhook or polled change in the shape the inbox stores."""

    external_id: str
    event_type: str
    payload: dict[str, Any] = field(repr=False)
    occurred_at: datetime | None = None
    object_id: str = ""
    reference: str = ""


class Connector:
    key: ClassVar[str]
    """Connection kind this connector serves ('stripe', 'znode', 'erp')."""

    display_name: ClassVar[str]

    supported_events: ClassVar[frozenset[str]] = frozenset()
    """Event types the platform understands; others are stored as 'ignored'."""

    accepts_webhooks: ClassVar[bool] = True

    signature_headers: ClassVar[tuple[str, ...]] = ()
    """Request headers (META names) of which at least one must be present before we
    read or store anything."""

    credential_keys: ClassVar[tuple[str, ...]] = ()
    """Credential names an operator is expected to set (shown as help)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not getattr(cls, "key", None) or not getattr(cls, "display_name", None):
            raise TypeError(f"{cls.__name__} must define 'key' and 'display_name'")

    # --- webhooks -----------------------------------------------------------------
    def has_signature(self, meta: Mapping[str, str]) -> bool:
        return any(meta.get(h) for h in self.signature_headers)

    def verify(self, *, body: bytes, meta: Mapping[str, str], secrets: list[str]) -> None:
        raise WebhookVerificationError(f"{self.display_name} does not accept webhooks")

    def parse(self, body: bytes) -> ParsedEvent:
        raise WebhookPayloadError(f"{self.display_name} does not accept webhooks")

    def is_known_event(self, event_type: str) -> bool:
        return event_type in self.supported_events

    # --- outbound -----------------------------------------------------------------
    def test_connection(self, connection: Connection) -> str:
        raise NotImplementedError


def load_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookPayloadError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise WebhookPayloadError("body is not a JSON object")
    return data
