import json
import time

import pytest
import stripe
from django.test import Client
from django.views.debug import ExceptionReporter

from integrations.choices import EventStatus, JobStatus
from integrations.connectors.stripe.webhooks import SIGNATURE_META, verify
from integrations.kernel.exceptions import WebhookVerificationError
from integrations.models import InboundEvent, Job
from tests.conftest import (
    STRIPE_OLD_SECRET,
    STRIPE_SECRET,
    make_flow,
    post_stripe,
    sign_stripe,
    stripe_event,
)
from tests.integrations.webhook_contract import WebhookSecurityContract, snapshot


class TestStripeWebhookSecurity(WebhookSecurityContract):
    @pytest.fixture
    def connection(self, stripe_connection):
        return stripe_connection

    @pytest.fixture
    def valid_payload(self):
        return stripe_event()

    def deliver(self, client, connection, payload, **how):
        return post_stripe(client, connection, payload, **how)

    def deliver_unsigned(self, client, connection, payload):
        return post_stripe(client, connection, payload, header="")

    def deliver_with_wrong_secret(self, client, connection, payload):
        return post_stripe(client, connection, payload, secret="whsec_attacker")

    def deliver_with_retired_secret(self, client, connection, payload):
        return post_stripe(client, connection, payload, secret=STRIPE_OLD_SECRET)

    def test_stale_signature_is_rejected(self, client, connection, valid_payload):
        before = snapshot()
        response = post_stripe(client, connection, valid_payload, timestamp=int(time.time()) - 301)
        assert response.status_code == 400
        assert snapshot() == before

    def test_signature_within_tolerance_is_accepted(self, client, connection, valid_payload):
        response = post_stripe(client, connection, valid_payload, timestamp=int(time.time()) - 290)
        assert response.status_code == 200

    def test_tampered_body_is_rejected(self, client, connection, valid_payload):
        body = json.dumps(valid_payload)
        header = sign_stripe(body)
        before = snapshot()
        response = post_stripe(client, connection, self.tamper(valid_payload), header=header)
        assert response.status_code == 400
        assert snapshot() == before

    def test_garbage_signature_header_is_rejected(self, client, connection, valid_payload):
        before = snapshot()
        response = post_stripe(client, connection, valid_payload, header="t=abc,v1=")
        assert response.status_code == 400
        assert snapshot() == before

    def test_connection_without_secrets_rejects_everything(self, client, connection, valid_payload):
        connection.webhook_secrets = []
        connection.save()
        before = snapshot()
        assert post_stripe(client, connection, valid_payload).status_code == 400
        assert snapshot() == before


@pytest.mark.django_db
def test_signed_event_posted_twice_gives_one_row_and_one_job(
    client, integration, django_capture_on_commit_callbacks
):
    make_flow("pi-paid", steps=[("echo", "tests.echo", {"value": "event.reference"})])
    payload = stripe_event()
    with django_capture_on_commit_callbacks(execute=True):
        first = post_stripe(client, integration.stripe, payload)
    with django_capture_on_commit_callbacks(execute=True):
        second = post_stripe(client, integration.stripe, payload)
    assert (first.status_code, second.status_code) == (200, 200)
    event = InboundEvent.objects.get()
    assert event.deliveries == 2
    assert event.status == EventStatus.PROCESSED
    job = Job.objects.get()
    assert job.status == JobStatus.SUCCEEDED
    assert job.step_outputs == {"echo": {"value": "ORD-1001", "amount": None}}


@pytest.mark.django_db
def test_malformed_json_after_valid_signature_is_400_and_logged(client, stripe_connection, caplog):
    body = '{"id": "evt_1", "type": '
    response = post_stripe(client, stripe_connection, body)
    assert response.status_code == 400
    assert "unreadable payload" in response.json()["error"]
    assert "unreadable payload" in caplog.text
    assert InboundEvent.objects.count() == 0


@pytest.mark.django_db
def test_event_without_id_is_400(client, stripe_connection):
    payload = stripe_event()
    del payload["id"]
    response = post_stripe(client, stripe_connection, payload)
    assert response.status_code == 400
    assert InboundEvent.objects.count() == 0


@pytest.mark.django_db
def test_unknown_event_type_is_stored_as_ignored(
    client, integration, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_stripe(client, integration.stripe, stripe_event("invoice.paid"))
    assert response.status_code == 200
    event = InboundEvent.objects.get()
    assert event.status == EventStatus.IGNORED
    assert "invoice.paid" in event.status_reason
    assert Job.objects.count() == 0
    assert callbacks == []  # nothing enqueued for an ignored event


@pytest.mark.django_db
def test_known_event_without_flow_is_ignored_with_reason(
    client, integration, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_stripe(client, integration.stripe, stripe_event("charge.refunded"))
    event = InboundEvent.objects.get()
    assert event.status == EventStatus.IGNORED
    assert event.status_reason == "no enabled flow is triggered by stripe charge.refunded"


@pytest.mark.django_db
def test_stored_event_keeps_raw_body_and_redacts_secrets(client, stripe_connection):
    payload = stripe_event()
    body = json.dumps(payload, indent=1)  # odd formatting must be kept byte for byte
    response = client.post(
        stripe_connection.webhook_path,
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign_stripe(body),
        HTTP_AUTHORIZATION="Bearer should-not-be-stored",
    )
    assert response.status_code == 200
    event = InboundEvent.objects.get()
    assert event.body == body
    assert event.external_id == payload["id"]
    assert event.object_id == payload["data"]["object"]["id"]
    assert event.reference == "ORD-1001"
    assert event.headers["Authorization"] == "[redacted]"
    assert "should-not-be-stored" not in json.dumps(event.headers)


@pytest.mark.django_db
def test_redelivery_of_processed_event_changes_nothing(
    client, integration, django_capture_on_commit_callbacks
):
    make_flow("pi-paid", steps=[("echo", "tests.echo", {})])
    payload = stripe_event()
    with django_capture_on_commit_callbacks(execute=True):
        post_stripe(client, integration.stripe, payload)
    job = Job.objects.get()
    attempts_before = job.attempt_log.count()
    with django_capture_on_commit_callbacks(execute=True):
        response = post_stripe(client, integration.stripe, payload)
    assert response.json() == {"received": True, "status": "processed", "duplicate": True}
    assert Job.objects.get().attempt_log.count() == attempts_before


@pytest.mark.django_db
def test_redelivery_of_failed_event_reruns_its_job(
    client, integration, django_capture_on_commit_callbacks, upstream
):
    from tests.support.upstream import Reply

    make_flow(
        "pi-paid",
        steps=[("write", "tests.call_upstream", {"reference": "event.reference"})],
        max_attempts=1,
    )
    upstream.queue(Reply(status=400, body={"error": "bad"}))
    payload = stripe_event()
    with django_capture_on_commit_callbacks(execute=True):
        post_stripe(client, integration.stripe, payload)
    assert InboundEvent.objects.get().status == EventStatus.FAILED
    assert Job.objects.get().status == JobStatus.QUARANTINED
    with django_capture_on_commit_callbacks(execute=True):
        response = post_stripe(client, integration.stripe, payload)
    assert response.json()["duplicate"] is True
    job = Job.objects.get()
    assert job.status == JobStatus.SUCCEEDED
    assert InboundEvent.objects.get().status == EventStatus.PROCESSED
    assert [r.method for r in upstream.requests] == ["POST", "POST"]


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["t=1,v1=\xe9", f"t={int(time.time())},v1=caf\xe9"])
def test_non_ascii_signature_is_a_400_not_a_500(stripe_connection, header):
    """The SDK's compare raises TypeError (not SignatureVerificationError) on a
    non-ASCII signature; that must be a plain rejection, never a 500."""
    client = Client(raise_request_exception=False)
    before = snapshot()
    response = post_stripe(client, stripe_connection, stripe_event(), header=header)
    assert response.status_code == 400
    assert response.json() == {"error": "signature verification failed"}
    assert snapshot() == before


def test_verify_maps_every_header_failure_to_a_verification_error():
    for header in ("t=1,v1=\xe9", "t=\xe9,v1=00", "v1=" + "a" * 64, "t=1e309,v1=00"):
        with pytest.raises(WebhookVerificationError):
            verify(
                body=b"{}", meta={SIGNATURE_META: header}, secrets=[STRIPE_SECRET], tolerance=300
            )


@pytest.mark.django_db
def test_any_unexpected_error_while_verifying_is_a_400(stripe_connection, monkeypatch, caplog):
    """Rule: any failure to verify is a rejection (400); the log names only the error's
    class, since its message may quote what it was given."""

    def broken(payload, header, secret, tolerance):
        raise RuntimeError(f"cannot compare {secret}")

    monkeypatch.setattr(stripe.WebhookSignature, "verify_header", broken)
    client = Client(raise_request_exception=False)
    response = post_stripe(client, stripe_connection, stripe_event())
    assert response.status_code == 400
    assert InboundEvent.objects.count() == 0
    assert "'why': 'RuntimeError'" in caplog.text
    assert STRIPE_SECRET not in caplog.text


def test_verify_hides_its_locals_from_error_reports():
    """@sensitive_variables: an error report of a failed verification (the debug page,
    an admin email) shows none of the secrets it was checking against."""
    secret = "plain-looking-signing-secret-4711"  # nothing a pattern would mask
    try:
        verify(body=b"{}", meta={SIGNATURE_META: "t=1,v1=00"}, secrets=[secret], tolerance=300)
    except WebhookVerificationError as exc:
        reporter = ExceptionReporter(None, type(exc), exc, exc.__traceback__)
        frames = reporter.get_traceback_frames()
    inner = [
        frame
        for frame in frames
        if frame["function"] != "test_verify_hides_its_locals_from_error_reports"
    ]
    assert "verify" in [frame["function"] for frame in inner]
    assert secret not in repr([frame["vars"] for frame in inner])
