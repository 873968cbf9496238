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
