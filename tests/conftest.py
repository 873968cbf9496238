from __future__ import annotations

import json
import time
import uuid

import pytest
import stripe

import tests.support.actions as test_actions
from integrations.models import Flow, FlowStep, Integration, Mapping, MappingField
from integrations.services.connections import connection_create
from integrations.views import forget_connection
from tests.support.sandbox import localstripe, sandbox, sandbox_server  # noqa: F401  (fixtures)
from tests.support.upstream import Upstream

STRIPE_SECRET = "whsec_test_primary_secret"
STRIPE_OLD_SECRET = "whsec_test_retiring_secret"
ZNODE_TOKEN = "Bearer znode-shared-webhook-token"


@pytest.fixture(autouse=True)
def _isolation():
    from integrations.kernel import stats

    forget_connection()
    test_actions.CALLS.clear()
    stats.take()  # dashboard counts of earlier tests
    yield
    forget_connection()
    stats.take()


@pytest.fixture(scope="session", autouse=True)
def _stop_background_writers(django_db_setup, django_db_blocker):
    """Threads that hold their own database connection must let go before the test
    database is dropped."""
    yield
    from integrations.services.intake_writer import writer

    with django_db_blocker.unblock():
        writer.close()


@pytest.fixture(scope="session")
def upstream_server():
    server = Upstream().start()
    yield server
    server.stop()


@pytest.fixture
def upstream(upstream_server):
    upstream_server.reset()
    return upstream_server


@pytest.fixture
def stripe_connection(db):
    return connection_create(
        name="stripe-test",
        kind="stripe",
        credentials={"api_key": "sk_test_51TESTKEYabcdefghijkl"},
        webhook_secrets=[STRIPE_SECRET, STRIPE_OLD_SECRET],
    )


@pytest.fixture
def znode_connection(db):
    return connection_create(
        name="znode-test",
        kind="znode",
        base_url="http://znode.invalid",
        credentials={"domain_name": "store.example.com", "domain_key": "9f1c-secret-key"},
        webhook_secrets=[ZNODE_TOKEN],
    )


@pytest.fixture
def erp_connection(db, upstream):
    return connection_create(
        name="erp-test", kind="erp", base_url=upstream.url, credentials={"token": "erp-token-123"}
    )


@pytest.fixture
def integration(stripe_connection, znode_connection, erp_connection):
    return Integration.objects.create(
        name="main", znode=znode_connection, stripe=stripe_connection, erp=erp_connection
    )


def make_flow(
    key: str,
    *,
    source: str = "stripe",
    event: str = "payment_intent.succeeded",
    steps: list[tuple[str, str, dict[str, str]]] = (),
    condition: str = "",
    max_attempts: int | None = None,
    retry_base_seconds: int | None = None,
) -> Flow:
    flow = Flow.objects.create(
        key=key,
        name=key,
        trigger_source=source,
        trigger_event=event,
        condition=condition,
        max_attempts=max_attempts,
        retry_base_seconds=retry_base_seconds,
    )
    for position, (name, action_key, fields) in enumerate(steps, start=1):
        mapping = None
        if fields:
            mapping = Mapping.objects.create(key=f"{key}-{name}")
            for index, (target, source_expr) in enumerate(fields.items()):
                MappingField.objects.create(
                    mapping=mapping, position=index, target=target, source=source_expr
                )
        FlowStep.objects.create(
            flow=flow, position=position, name=name, action=action_key, mapping=mapping
        )
    return flow


def stripe_event(
    event_type: str = "payment_intent.succeeded",
    *,
    event_id: str | None = None,
    obj: dict | None = None,
) -> dict:
    obj = obj or {
        "id": "pi_" + uuid.uuid4().hex[:24],
        "object": "payment_intent",
        "amount": 1999,
        "currency": "usd",
        "status": "succeeded",
        "metadata": {"znode_order_number": "ORD-1001"},
    }
    return {
        "id": event_id or "evt_" + uuid.uuid4().hex[:24],
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "type": event_type,
        "data": {"object": obj},
        "request": {"id": None, "idempotency_key": None},
    }


def sign_stripe(body: str, secret: str = STRIPE_SECRET, timestamp: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=timestamp)


def post_stripe(client, connection, payload, *, secret=STRIPE_SECRET, timestamp=None, header=None):
    body = payload if isinstance(payload, str) else json.dumps(payload)
    extra = {}
    signature = header if header is not None else sign_stripe(body, secret, timestamp)
    if signature:
        extra["HTTP_STRIPE_SIGNATURE"] = signature
    return client.post(connection.webhook_path, data=body, content_type="application/json", **extra)


def znode_event(
    *, module="Order", name="Created", event_id=None, payload: dict | None = None
) -> dict:
    payload = payload or {"OmsOrderId": 42, "OrderNumber": "ORD-1001", "Total": 19.99}
    return {
        "EventId": event_id or str(uuid.uuid4()),
        "EventModule": module,
        "EventName": name,
        "EventDataId": payload.get("OmsOrderId"),
        "EventDataCode": payload.get("OrderNumber"),
        "EventPayload": json.dumps(payload),
        "EventTimeStamp": "2026-11-30T10:00:00",
        "TraceId": "trace-1",
        "UserId": 2,
        "EventVersion": "1.0",
    }


def post_znode(client, connection, payload, *, authorization=ZNODE_TOKEN, signature=None):
    body = payload if isinstance(payload, str) else json.dumps(payload)
    extra = {}
    if authorization:
        extra["HTTP_AUTHORIZATION"] = authorization
    if signature:
        extra["HTTP_X_ZNODE_SIGNATURE"] = signature
    return client.post(connection.webhook_path, data=body, content_type="application/json", **extra)


class Clock:
    """Controls django.utils.timezone.now() for code under test."""

    def __init__(self, start):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, **delta):
        from datetime import timedelta

        self.now = self.now + timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch):
    from django.utils import timezone

    fake = Clock(timezone.now())
    monkeypatch.setattr(timezone, "now", fake)
    return fake


def make_job(flow, integration, *, reference="ORD-1001", context=None):
    from integrations.models import Job

    return Job.objects.create(
        flow=flow,
        integration=integration,
        max_attempts=flow.max_attempts or 8,
        reference=reference,
        context=context or {"event": {"reference": reference, "data": {"total": "19.99"}}},
    )
