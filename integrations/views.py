"""Webhook intake: verify → store once → enqueue after commit → 2xx, fast.

A DRF ``APIView`` (the platform's API framework) kept lean for the hot path: no
authentication classes (no user calls it), no parsers (the raw bytes are what is
verified; nothing is parsed before the signature holds), one JSON renderer, and the
connector's signature as the only gate (:class:`SignedByTheSystem`). It is served by
the WSGI fast lane (config/wsgi.py); benchmarks/intake.py measures it against a bare
Django view.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time

from django.conf import settings
from django.core.signals import got_request_exception
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.debug import sensitive_variables
from rest_framework.exceptions import APIException
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from integrations.choices import EventStatus
from integrations.connectors import registry as connectors
from integrations.kernel.context import correlated
from integrations.kernel.exceptions import WebhookPayloadError, WebhookVerificationError
from integrations.kernel.metrics import WEBHOOKS
from integrations.kernel.redaction import redact_headers
from integrations.models import Connection
from integrations.services.inbox import inbox_event_receive

logger = logging.getLogger("integrations.webhooks")

# token → (connection, secrets, expires). A short TTL bounds how long another process
# may use a rotated-out secret; saves in this process drop the entry at once.
_CACHE_SECONDS = 5.0
_cache: dict[str, tuple[Connection | None, list[str], float]] = {}
_cache_lock = threading.Lock()


def forget_connection(sender=None, instance=None, **kwargs) -> None:
    with _cache_lock:
        if instance is None:
            _cache.clear()
        else:
            _cache.pop(instance.url_token, None)


@sensitive_variables("secrets", "hit")
def _connection_for(token: str) -> tuple[Connection | None, list[str]]:
    now = time.monotonic()
    hit = _cache.get(token)
    if hit and hit[2] > now:
        return hit[0], hit[1]
    connection = Connection.objects.filter(url_token=token).first()
    if connection is None:
        return None, []  # misses are not cached: random tokens must not grow memory
    secrets = connection.secret_list()
    with _cache_lock:
        _cache[token] = (connection, secrets, now + _CACHE_SECONDS)
    return connection, secrets


class _FirstRenderer(BaseContentNegotiation):
    """No negotiation on the hot path: machines get JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _reject(status: int, reason: str, **log) -> JsonResponse:
    logger.warning("integrations.webhooks.rejected status=%s reason=%s %s", status, reason, log)
    return JsonResponse({"error": reason}, status=status)


def _headers(request: HttpRequest) -> dict[str, str]:
    meta = request.META
    headers = {k[5:].replace("_", "-").title(): v for k, v in meta.items() if k.startswith("HTTP_")}
    if "CONTENT_TYPE" in meta:
        headers["Content-Type"] = meta["CONTENT_TYPE"]
    return redact_headers(headers)


class SignedByTheSystem(BasePermission):
    """Who may post a webhook: whoever the system's signature (checked in the view,
    against the connection's active secrets, before anything is stored) vouches for.
    There is no user to authenticate, so this grants the request and leaves the gate
    to the signature; every rejection is answered before anything is stored."""

    def has_permission(self, request, view) -> bool:
        return True


class WebhookView(APIView):
    http_method_names = ["post"]  # no OPTIONS metadata, no HEAD: 405 for all but POST
    authentication_classes = ()
    permission_classes = (SignedByTheSystem,)
    parser_classes = ()
    renderer_classes = (JSONRenderer,)
    throttle_classes = ()
    content_negotiation_class = _FirstRenderer

    def post(self, request, kind: str, token: str) -> HttpResponse:
        started = time.perf_counter()
        response = None
        try:
            response = _receive(request._request, kind, token)
        finally:  # an error (answered 500 by handle_exception) is counted too
            with contextlib.suppress(Exception):  # counting never fails intake
                if response is None:
                    outcome = "error_500"
                else:
                    outcome = getattr(response, "intake_outcome", None) or (
                        f"rejected_{response.status_code}"
                    )
                WEBHOOKS.labels(kind if connectors.find(kind) else "-", outcome).observe(
                    time.perf_counter() - started
                )
        return response

    def http_method_not_allowed(self, request, *args, **kwargs) -> HttpResponse:
        return JsonResponse({"error": "POST only"}, status=405)

    def handle_exception(self, exc: Exception) -> HttpResponse:
        """A bug or an outage answers a bare JSON 500, whatever DEBUG says: a webhook
        endpoint never renders Django's debug page (its locals hold the connection's
        secrets). The traceback goes to the log, through the redacting filter."""
        if isinstance(exc, APIException):
            return super().handle_exception(exc)
        logger.error(
            "integrations.webhooks.error %s %s", type(exc).__name__, self.request.path, exc_info=exc
        )
        got_request_exception.send(sender=type(self), request=self.request._request)
        response = JsonResponse({"error": "internal error"}, status=500)
        response._has_been_logged = True  # logged above, with the redacted traceback
        return response


@sensitive_variables("secrets")
def _receive(request: HttpRequest, kind: str, token: str) -> HttpResponse:
    connector = connectors.find(kind)
    if connector is None or not connector.accepts_webhooks:
        return _reject(404, "unknown endpoint")
    limit = settings.INTEGRATIONS["WEBHOOK_MAX_BODY_BYTES"]
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return _reject(413, f"body larger than {limit} bytes")
    # Before any lookup or write: an unsigned request costs us nothing.
    if not connector.has_signature(request.META):
        return _reject(400, "missing signature", kind=kind)
    connection, secrets = _connection_for(token)
    if connection is None or connection.kind != kind:
        return _reject(404, "unknown endpoint")
    if not connection.enabled:
        return _reject(503, "connection disabled", connection=connection.name)
    body = request.body
    if len(body) > limit:
        return _reject(413, f"body larger than {limit} bytes")
    try:
        connector.verify(body=body, meta=request.META, secrets=secrets)
    except WebhookVerificationError as exc:
        return _reject(
            400, "signature verification failed", connection=connection.name, why=str(exc)
        )
    except Exception as exc:  # any failure to verify is a rejection (400), never a 500
        # Only the class: the message of an unexpected error may quote what it was given.
        return _reject(
            400, "signature verification failed", connection=connection.name, why=type(exc).__name__
        )
    try:
        parsed = connector.parse(body)
    except WebhookPayloadError as exc:
        return _reject(400, f"unreadable payload: {exc}", connection=connection.name)
    with correlated(parsed.reference):
        result = inbox_event_receive(
            connection_obj=connection,
            parsed=parsed,
            body=body,
            headers=_headers(request),
            remote_addr=request.META.get("REMOTE_ADDR"),
        )
    response = HttpResponse(
        _ACCEPTED[(result.status, result.created)], content_type="application/json"
    )
    response.intake_outcome = "accepted" if result.created else "duplicate"
    return response


# Every answer intake can give, serialised once (this is the hot path).
_ACCEPTED = {
    (status, created): json.dumps(
        {"received": True, "status": status, "duplicate": not created}
    ).encode()
    for status in EventStatus.values
    for created in (True, False)
}


webhook_receive = WebhookView.as_view()  # csrf-exempt, like every APIView


def dashboard_panel(request: HttpRequest) -> HttpResponse:
    """The dashboard (integrations/services/dashboard.py) for ``?window=&flow=&connection=``;
    403 without ``integrations.view_job``."""
    from urllib.parse import urlencode

    from django.core.exceptions import PermissionDenied
    from django.shortcuts import render
    from django.urls import reverse

    from integrations.services.dashboard import dashboard_read

    if not request.user.has_perm("integrations.view_job"):
        raise PermissionDenied
    data = dashboard_read(
        window=request.GET.get("window", "hour")[:10],
        flow=request.GET.get("flow", "")[:120],
        connection=request.GET.get("connection", "")[:80],
    )
    url = reverse("integrations-dashboard")
    chosen = {k: data[k] for k in ("window", "flow", "connection") if data[k]}
    return render(
        request,
        "admin/integrations/dashboard.html",
        {
            "d": data,
            "panel_url": url,
            "refresh_url": f"{url}?{urlencode(chosen)}",
            "refresh_seconds": 5,
        },
    )
