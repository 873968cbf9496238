"""Events: every change is kept as an Event (``GET /v1/events``) and sent as a signed webhook."""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sandbox.faults import FaultInjector
from sandbox.stripe import params as p
from sandbox.stripe.errors import invalid
from sandbox.webhooks import Delivery, Endpoint, WebhookDispatcher

API_VERSION = "2026-10-28.endive"
logger = logging.getLogger("sandbox.stripe")


def signature_header(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>``, as Stripe signs webhooks."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class StripeWebhookDispatcher(WebhookDispatcher):
    """Reports each delivery's outcome, so events can count their pending webhooks."""

    def __init__(
        self,
        name: str,
        faults: FaultInjector,
        retry_delays: tuple[float, ...],
        on_result: Callable[[bytes, str, bool], None],
    ) -> None:
        self.on_result = on_result
        super().__init__(name, faults, self._sign, retry_delays)

    @staticmethod
    def _sign(body: bytes, endpoint: Endpoint) -> dict[str, str]:
        # Signed at each attempt with the real time, as Stripe does.
        return {"Stripe-Signature": signature_header(body, endpoint.secret)}

    def _deliver(self, delivery: Delivery) -> None:
        super()._deliver(delivery)
        with self.lock:  # only this thread logs deliveries: the last entry is this attempt
            last = self.log[-1] if self.log else {}
        status = last.get("status")
        ours = (last.get("url"), last.get("attempt")) == (delivery.endpoint.url, delivery.attempt)
        ok = ours and isinstance(status, int) and 200 <= status < 300
        try:
            self.on_result(delivery.body, delivery.endpoint.url, ok)
        except Exception:  # bookkeeping must never stop the delivery thread
            logger.exception("sandbox stripe: recording a webhook delivery failed")


class EventsMixin:
    """Needs ``self.webhooks``, ``self.faults``, the store and ``self.call`` (request context)."""

    _quiet = False

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """Record no events and send no webhooks inside (a bulk seed of test data)."""
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    def emit(self, event_type: str, obj: dict, previous: dict | None = None) -> dict | None:
        if self._quiet:
            return None
        call = getattr(self, "call", None)
        request = {
            "id": call.request_id if call else None,
            "idempotency_key": call.idempotency_key if call else None,
        }
        data: dict = {"object": self.render(obj)}
        if previous:
            data["previous_attributes"] = copy.deepcopy(previous)
        targets = []
        if self.faults.config.webhooks_enabled:
            targets = [e.url for e in list(self.webhooks.endpoints) if e.wants(event_type)]
        event = {
            "id": self.new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": len(targets),
            "request": request,
            "type": event_type,
        }
        self.insert({**event, "_pending": targets})
        self._trim_events()
        if targets:
            self.webhooks.emit(event_type, json.dumps(event, indent=2).encode())
        return event

    def update_metadata(self, obj: dict, params: dict, *event_types: str) -> None:
        """An update that may change only ``metadata``: applied, and ``event_types`` emitted
        with the previous metadata, when it changes anything."""
        p.check_known(params, ("metadata",))
        new_metadata = p.metadata(params, obj["metadata"])
        if new_metadata is not None and new_metadata != obj["metadata"]:
            previous = {"metadata": obj["metadata"]}
            obj["metadata"] = new_metadata
            for event_type in event_types:
                self.emit(event_type, obj, previous)

    def _trim_events(self, keep: int = 20000) -> None:
        events = self.table("event")
        while len(events) > keep:
            del events[next(iter(events))]

    def webhook_result(self, body: bytes, url: str, ok: bool) -> None:
        """Called by the dispatcher thread after each delivery attempt."""
        if not ok:
            return
        try:
            event_id = json.loads(body)["id"]
        except (ValueError, KeyError, TypeError):
            return
        with self.lock:
            event = self.find("event", event_id)
            if event and url in event.get("_pending", []):
                event["_pending"] = [u for u in event["_pending"] if u != url]
                event["pending_webhooks"] = len(event["_pending"])

    # --- API ------------------------------------------------------------------------
    def api_events_list(self, call) -> dict:
        params = call.params
        p.check_known(
            params,
            (
                "created",
                "delivery_success",
                "ending_before",
                "limit",
                "starting_after",
                "type",
                "types",
            ),
        )
        wanted_type = p.text(params, "type")
        types = p.string_list(params, "types")
        if wanted_type and types:
            raise invalid("You may only specify one of these parameters: type, types.", "types")
        if types is not None and len(types) > 20:
            raise invalid("You may pass at most 20 types.", "types")
        created = p.range_filter(params, "created")
        delivered = p.boolean(params, "delivery_success")

        def keep(event: dict) -> bool:
            if wanted_type and not fnmatch.fnmatchcase(event["type"], wanted_type):
                return False
            if types is not None and event["type"] not in types:
                return False
            if created and not created(event["created"]):
                return False
            return delivered is None or (event["pending_webhooks"] == 0) == delivered

        return self.list_body(self.newest_first("event", keep), params, "/v1/events")

    def api_events_retrieve(self, call) -> dict:
        return self.render(self.get("event", call.path["id"]), call.expand)
