import pytest

from integrations.kernel import exceptions as exc
from integrations.kernel.http import http_request, parse_retry_after
from integrations.models import ApiCall
from tests.support.upstream import Reply

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (500, exc.ConnectorUnavailable, True),
        (503, exc.ConnectorUnavailable, True),
        (429, exc.RateLimited, True),
        (409, exc.ConflictRetry, True),
        (400, exc.BadRequest, False),
        (401, exc.Unauthorized, False),
        (403, exc.Unauthorized, False),
        (404, exc.NotFound, False),
        (422, exc.BadRequest, False),
    ],
)
def test_status_codes_map_onto_the_taxonomy(erp_connection, upstream, status, error, retryable):
    upstream.queue(Reply(status=status, body={"error": "x"}, headers={"Retry-After": "7"}))
    with pytest.raises(error) as caught:
        http_request(erp_connection, "GET", upstream.url + "/x", operation="probe")
    assert caught.value.retryable is retryable
    assert caught.value.http_status == status  # callers decide on it, not on the text
    if retryable:
        assert caught.value.retry_after == 7
    call = ApiCall.objects.get()
    assert (call.status_code, call.operation, call.method) == (status, "probe", "GET")


def test_timeout_is_retryable_and_recorded(erp_connection, upstream):
    upstream.queue(Reply(delay=0.5))
    with pytest.raises(exc.ConnectorTimeout):
        http_request(erp_connection, "GET", upstream.url + "/slow", timeout=(1, 0.1))
    call = ApiCall.objects.get()
    assert call.status_code is None
    assert "ConnectorTimeout" in call.error


def test_unreachable_host_is_retryable(erp_connection):
    with pytest.raises(exc.ConnectorUnavailable):
        http_request(erp_connection, "GET", "http://127.0.0.1:9/nothing", timeout=(0.5, 0.5))
    assert ApiCall.objects.count() == 1


def test_bodies_and_headers_are_redacted(erp_connection, upstream):
    upstream.queue(
        Reply(body={"id": "je_1", "client_secret": "pi_123_secret_456", "note": "sk_live_abcdefgh"})
    )
    http_request(
        erp_connection,
        "POST",
        upstream.url + "/journal",
        headers={"Authorization": "Bearer top-secret-token"},
        json={"password": "hunter2", "amount": "10.00"},
        idempotency_key="je:ORD-1",
    )
    assert upstream.requests[0].headers["Authorization"] == "Bearer top-secret-token"
    call = ApiCall.objects.get()
    stored = str(call.request_headers) + call.request_body + call.response_body
    for secret in ("top-secret-token", "hunter2", "pi_123_secret_456", "sk_live_abcdefgh"):
        assert secret not in stored
    assert '"amount": "10.00"' in call.request_body
    assert call.idempotency_key == "je:ORD-1"


def test_retry_after_parsing():
    assert parse_retry_after("30") == 30
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0


def test_calls_held_are_stored_together_as_each_is_stored_alone(erp_connection, upstream):
    """The bulk path (a page read ahead on another thread: held, then stored at once)
    stores exactly what the one-by-one path stores: redacted, with its connection,
    and with the moment it was stored."""
    from django.forms.models import model_to_dict

    from integrations.kernel.http import calls_store, held_calls
    from integrations.services.api_calls import api_call_store

    secrets = {"client_secret": "pi_9_secret_8", "note": "sk_live_zyxwvuts", "amount": "1.00"}
    for _ in range(2):
        upstream.queue(Reply(body=secrets))
    with held_calls() as held:
        for path in ("/a", "/b"):
            http_request(
                erp_connection,
                "GET",
                upstream.url + path,
                operation="probe",
                headers={"Authorization": "Bearer held-token"},
            )
    assert not ApiCall.objects.exists()  # held, not stored
    calls_store(held)
    together = list(ApiCall.objects.order_by("id"))
    for record in held:
        api_call_store(record)
    alone = list(ApiCall.objects.order_by("id"))[len(together) :]

    def stored(call: ApiCall) -> dict:
        return {k: v for k, v in model_to_dict(call).items() if k not in ("id", "created_at")}

    assert [stored(c) for c in together] == [stored(c) for c in alone]
    assert [c.url.rsplit("/", 1)[1] for c in together] == ["a", "b"]
    assert all(c.connection_id == erp_connection.pk and c.created_at for c in together)
    text = "".join(str(c.request_headers) + c.response_body for c in together)
    for secret in ("held-token", "pi_9_secret_8", "sk_live_zyxwvuts"):
        assert secret not in text
