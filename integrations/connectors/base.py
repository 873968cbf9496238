"""What a connector is: the code that knows one kind of external system.

A connector class is registered (settings ``INTEGRATIONS["CONNECTORS"]``) and is
stateless; a :class:`~integrations.models.Connection` row holds the credentials of one
configured instance. To add a system, subclass :class:`Connector` in
``integrations/connectors/<kind>/connector.py`` and implement:

* ``verify()`` — authenticate a webhook request (constant-time compares, any of the
  connection's active secrets) or raise ``WebhookVerificationError``;
* ``parse()`` — turn a verified body into a :class:`ParsedEvent`, or raise
  ``WebhookPayloadError``; no database access;
* ``client()`` — the connector's client for one connection; domain code reaches it
  only as ``connection.client()`` (or ``ctx.client(kind)`` in an action);
* ``test_connection()`` — one cheap authenticated read through that client,
  returning a short summary.

* ``event_facts()`` — the business facts of an event (``payment``, ``order``) that
  shipped mappings read, so no flow reads a wire path;

and, where one object is reported by several sources (webhooks and a poller) or our
own writes echo back as "updated" events:

* ``change_fingerprint()`` — reduce an event to the object it is about and a hash of
  only what flows act on, so the inbox creates no job for a change it already routed.

A system that sends no webhooks (or not reliably) is polled: set ``supports_polling``
and implement ``poll()`` (in the connector's ``sync.py``) and ``poll_every_minutes()``.
The engine schedules the polls, holds the lease on the connection's cursor and hands
``poll()`` a :class:`PollStore`: all the poller reads and writes goes through it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from integrations.kernel.exceptions import WebhookPayloadError, WebhookVerificationError

if TYPE_CHECKING:
    from collections.abc import Collection

    from integrations.kernel.types import Connection


@dataclass(frozen=True)
class ParsedEvent:
    """A webhook or polled change in the shape the inbox stores."""

    external_id: str
    event_type: str
    payload: dict[str, Any] = field(repr=False)
    occurred_at: datetime | None = None
    object_id: str = ""
    reference: str = ""


@dataclass(frozen=True)
class ChangeFingerprint:
    """What an event says about one external object, reduced to what flows act on.

    The inbox keeps the last fingerprint it routed per (connection, ``object_key``) and
    creates no job for an event that carries the same one again: the same change
    reported by a second source, or the echo of our own write to a field no flow reads.
    """

    object_key: str
    """Stable name of the object within its connection, e.g. ``order:42``."""

    fingerprint: str
    """Hash of the fields a flow acts on (normalized so every source agrees); at most
    64 characters."""

    creates: bool = False
    """The event announces the object's creation: it runs its flows once per object,
    whichever source reports it first, even after updates were routed."""

    update_event_type: str = ""
    """For a creation reported again after one was routed, carrying a fingerprint that
    differs from the last one routed (a poller's first sight of an order that changed
    since its webhook): the event type whose flows run for that change. Blank: such a
    repeat is only a duplicate."""


@dataclass(frozen=True)
class SeenOrder:
    """What a poller remembers of one order between two polls."""

    order_id: int
    order_number: str
    fingerprint: str
    """Hash of what a change must touch to be worth an event (the poller's own)."""
    version: int
    """1 when first seen, one more for every change reported since; the poller puts
    it in the event id, so each version is one inbox row."""
    state: str = ""
    open: bool = True
    """Not in a final state: re-read on every poll, whatever its date."""


ORDERS_WATERMARK = "orders"
"""The name of the watermark :attr:`PollStore.watermark` is."""


class PollStore(Protocol):
    """What a connector's poller reads and writes, given by the engine for one poll of
    one connection (which only one worker polls at a time). Implemented by
    ``integrations.services.polling``; a connector never touches the engine's rows.

    A poller may follow several lists (a store's orders and its returns), each with a
    named watermark; the orders' one is :attr:`watermark`.
    """

    @property
    def watermark(self) -> datetime | None:
        """The orders' watermark: ``watermark_of(ORDERS_WATERMARK)``."""
        ...

    def advance(self, watermark: datetime) -> None:
        """``advance_to(ORDERS_WATERMARK, watermark)``."""
        ...

    def watermark_of(self, name: str) -> datetime | None:
        """The newest change time earlier polls saw in the list ``name`` (None: never
        polled)."""
        ...

    def advance_to(self, name: str, when: datetime) -> None:
        """Move the watermark ``name``; the engine keeps it when the poll ends, failed
        or not."""
        ...

    def event_observed(self, *, parsed: ParsedEvent, body: bytes) -> bool:
        """Store a change that needs no seen-order row in the inbox (``body``, as
        ``parse()`` read it into ``parsed``), its event id deterministic from the
        object's state so a re-read stores nothing. Returns whether it was new; an
        event already stored is left as it is (a re-read is no redelivery)."""
        ...

    def known_order(self, order_id: int) -> SeenOrder | None: ...

    def open_orders(self, *, exclude: Collection[int], limit: int) -> list[int]:
        """Ids of known open orders not in ``exclude``, the longest unchecked first."""
        ...

    def order_checked(self, order_id: int, *, open: bool) -> None:
        """The order was read again and nothing that matters changed."""
        ...

    def order_changed(self, order: SeenOrder, *, parsed: ParsedEvent, body: bytes) -> None:
        """Remember ``order`` (new, or a new version) and store its event (``body``, as
        ``parse()`` read it into ``parsed``) in the inbox: both or neither."""
        ...


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

    def change_fingerprint(
        self, event_type: str, payload: dict[str, Any]
    ) -> ChangeFingerprint | None:
        """What this event changes, for the inbox's duplicate and echo check.

        ``payload`` is :attr:`ParsedEvent.payload` as this connector's ``parse()`` made
        it, whichever source (webhook, poller) stored the event. Return None to route
        every event of this type (the default). Pure: no database or network access,
        and it must not raise on odd values (fold them into the fingerprint instead).
        Include only what a flow acts on, never the fields our own actions write back
        (statuses we set, notes, external ids, modified dates), or every write we make
        comes back as a job. Two sources must give the same fingerprint for the same
        state of the object.
        """
        return None

    def event_facts(self, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The business facts of an event, by name, as plain JSON: what shipped
        mappings and flow conditions read instead of wire paths (``payment.order_number``
        rather than ``data.object.metadata.znode_order_number``). The engine adds them to
        the document beside ``event`` (which keeps the raw payload).

        ``payload`` is :attr:`ParsedEvent.payload`. Pure: no database or network
        access, and odd values give what can be read rather than an error. Names the
        engine uses itself (``event``, ``connection``, ``integration``, ``steps``) are
        not allowed. Default: none."""
        return {}

    # --- polling ------------------------------------------------------------------
    supports_polling: ClassVar[bool] = False
    """The engine polls this kind's connections: it calls :meth:`poll`."""

    def poll_every_minutes(self, connection: Connection) -> int | None:
        """Minutes between two scheduled polls of ``connection``; None: no schedule."""
        return None

    def poll(self, connection: Connection, store: PollStore, *, now: datetime) -> None:
        """Read what changed since ``store.watermark`` (or a named watermark) and report
        each change through ``store`` as a normalized event (the shape ``parse()``
        reads). Raise the client's errors: the engine records them and keeps the
        watermarks reached."""
        raise NotImplementedError

    # --- outbound -----------------------------------------------------------------
    def client(self, connection: Connection) -> Any:
        """The client that speaks to this connection's system (HTTP, auth, errors)."""
        raise NotImplementedError

    def test_connection(self, connection: Connection) -> str:
        raise NotImplementedError


def load_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; only UTF-8 is accepted (``json.loads`` would take
    UTF-16 and UTF-32 bytes too, which the inbox then cannot store as text)."""
    try:
        data = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookPayloadError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise WebhookPayloadError("body is not a JSON object")
    return data
