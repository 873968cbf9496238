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
from integrations.kernel.redaction import redact_headers, redact_text, shown_json
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


# --- the mapping editor's preview and suggestions (htmx) ----------------------------------
def _posted_rules(
    post, *, prefix: str, count: str, delete: str, most: int
) -> tuple[list, list[str]]:
    """Mapping rows as typed in a form (``<prefix>-N-target`` …, ``count`` of them, a
    row with ``delete`` set left out), in their ``position`` order when they have one,
    and the errors of rows that cannot be read (a default not JSON). A checkbox reads
    as Django's does."""
    import json

    from django.forms import CheckboxInput

    from integrations.mapping import Rule

    text = str(post.get(count, "0"))
    rows, errors = [], []
    for i in range(min(int(text) if text.isdigit() else 0, most)):

        def field(name: str, i: int = i) -> str:
            return post.get(f"{prefix}-{i}-{name}", "")

        target = field("target").strip()
        if not target or field(delete):
            continue
        default_text = field("default").strip()
        try:
            default = json.loads(default_text) if default_text else None
        except ValueError:
            errors.append(f"{target}: the default is not JSON ({default_text[:40]!r})")
            continue
        position = field("position").strip()
        rule = Rule(
            target=target[:200],
            source=field("source").strip()[:500],
            transform=field("transform").strip()[:200],
            default=default,
            required=CheckboxInput().value_from_datadict(post, {}, f"{prefix}-{i}-required"),
        )
        rows.append((int(position) if position.isdigit() else i, rule))
    return [rule for _, rule in sorted(rows, key=lambda r: r[0])], errors


def _posted_rows(post) -> tuple[list, list[str]]:
    """The mapping change form's rows (``fields-N-…``, not yet saved)."""
    return _posted_rules(
        post, prefix="fields", count="fields-TOTAL_FORMS", delete="DELETE", most=500
    )


def _sample(request, mapping) -> tuple[dict | None, str]:
    """The document the preview runs on, or why there is none."""
    import json

    from integrations.kernel.exceptions import DataError
    from integrations.models import FlowStep
    from integrations.services.flow_design import sample_document

    choice = request.POST.get("_preview_sample", "")[:40]
    if choice == "paste" or not choice:
        text = request.POST.get("_preview_document", "").strip()
        if not text:
            return None, "Choose a sample, or paste a document (JSON) to preview on."
        try:
            document = json.loads(text[:200_000])
        except ValueError as error:
            return None, f"The pasted document is not JSON: {error}"
        return (document, "") if isinstance(document, dict) else (None, "Paste a JSON object.")
    # A sample is a job's or an event's payload: shown only to who may view those.
    needed = {"job": "integrations.view_job", "event": "integrations.view_inboundevent"}
    kind = choice.partition(":")[0]
    if kind in needed and not request.user.has_perm(needed[kind]):
        return None, f"You may not view {kind}s, so you cannot preview on one."
    step = FlowStep.objects.filter(mapping=mapping).values_list("name", flat=True).first() or ""
    try:
        return sample_document(choice, step_name=step), ""
    except DataError as error:
        return None, error.message


def _mapping_for_view(request, pk: int):
    from django.core.exceptions import PermissionDenied
    from django.http import Http404

    from integrations.models import Mapping

    if request.method != "POST" or not request.user.has_perm("integrations.view_mapping"):
        raise PermissionDenied
    mapping = Mapping.objects.filter(pk=pk).first()
    if mapping is None:
        raise Http404("no such mapping")
    return mapping


def mapping_preview_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """The rows as typed, evaluated on the chosen sample (a POST from the mapping's
    change form; needs ``integrations.view_mapping``; writes nothing)."""

    from django.shortcuts import render

    from integrations.services.flow_design import mapping_preview, rule_problems

    mapping = _mapping_for_view(request, pk)
    rules, errors = _posted_rows(request.POST)
    document, why = _sample(request, mapping)
    if document is None:
        return render(request, "admin/integrations/mapping/preview.html", {"error": why})
    preview = mapping_preview(rules, document)
    problems = [redact_text(p) for p in errors] + [
        f"{r.target}: {p}" for r in rules for p in rule_problems(r)
    ]
    return render(
        request,
        "admin/integrations/mapping/preview.html",
        {
            "preview": {
                "rows": [
                    {
                        "target": row.target,
                        "error": redact_text(row.error),
                        "skipped": row.skipped,
                        "used_default": row.used_default,
                        "value_json": shown_json(row.value),
                    }
                    for row in preview.rows
                ]
            },
            "inputs_json": shown_json(preview.inputs),
            "problems": problems,
        },
    )


def mapping_suggest_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """Suggested rows for the inputs of the mapping's action that no row maps yet,
    ranked on the chosen sample (needs ``integrations.view_mapping``)."""

    from django.shortcuts import render

    from integrations.models import FlowStep
    from integrations.registry import all_actions
    from integrations.services.flow_design import action_inputs
    from integrations.services.mapping_assist import mapping_usage, semantic_scorer, suggest

    mapping = _mapping_for_view(request, pk)
    rules, _ = _posted_rows(request.POST)
    document, why = _sample(request, mapping)
    step = FlowStep.objects.filter(mapping=mapping).first()
    spec = all_actions().get(step.action) if step else None
    if document is None or spec is None:
        reason = why or "The mapping is used by no step of a registered action."
        return render(request, "admin/integrations/mapping/suggest.html", {"error": reason})
    found = suggest(
        action_inputs(spec),
        document,
        mapped={r.target.split(".")[0] for r in rules},
        usage=mapping_usage(),
        semantic=semantic_scorer(),
    )
    return render(
        request,
        "admin/integrations/mapping/suggest.html",
        {
            "action": spec.key,
            "suggestions": [
                {
                    "target": target,
                    "options": [
                        {
                            "source": s.source,
                            "transform": s.transform,
                            "score": f"{s.score:.2f}",
                            "why": s.why,
                            "value_json": shown_json(s.value)[:200],
                        }
                        for s in options
                    ],
                }
                for target, options in found.items()
            ],
        },
    )


# --- fix and re-drive (an error group's jobs) --------------------------------------------------
REDRIVE_ROWS_EXTRA = 2


def _draft_rows(post) -> tuple[list, list[str]]:
    """The draft mapping rows of the re-drive form (``row-N-…``, in their order)."""
    return _posted_rules(post, prefix="row", count="rows", delete="delete", most=200)


def redrive_page(request: HttpRequest, pk: int) -> HttpResponse:
    """An error group's fix: the failing step's mapping as a draft, tried on every
    failed job (dry run: old and new result per record), then saved and exactly those
    jobs retried. Needs ``integrations.operate_job`` and ``integrations.change_mapping``."""
    import json

    from django.contrib import messages
    from django.core.exceptions import PermissionDenied
    from django.http import Http404
    from django.shortcuts import redirect, render
    from django.urls import reverse

    from integrations.kernel.exceptions import DataError
    from integrations.models import ErrorGroup
    from integrations.services.flow_versions import mapping_rules
    from integrations.services.redrive import (
        redrive_apply,
        redrive_plan,
        redrive_step,
    )

    if not (
        request.user.has_perm("integrations.operate_job")
        and request.user.has_perm("integrations.change_mapping")
    ):
        raise PermissionDenied
    group = ErrorGroup.objects.filter(pk=pk).select_related("flow").first()
    if group is None:
        raise Http404("no such error group")
    step = redrive_step(group)
    errors: list[str] = []
    if request.method == "POST":
        draft, errors = _draft_rows(request.POST)
        job_ids = [int(i) for i in request.POST.getlist("job") if i.isdigit()]
        if request.POST.get("apply") and not errors:
            try:
                _, retried = redrive_apply(
                    group,
                    draft,
                    job_ids,
                    operator=request.user,
                    reason=request.POST.get("reason", "")[:200],
                )
            except DataError as error:
                errors.append(error.message)
            else:
                messages.success(
                    request, f"Mapping saved; {len(retried)} job(s) of group {group.pk} re-driven."
                )
                return redirect(reverse("admin:integrations_errorgroup_change", args=[group.pk]))
    else:
        draft = mapping_rules(step.mapping if step and step.mapping_id else None)
        job_ids = None
    plan = redrive_plan(group, draft, job_ids if request.method == "POST" else None)
    rows = [
        {
            "target": r.target,
            "source": r.source,
            "transform": r.transform,
            "default": "" if r.default is None else json.dumps(r.default),
            "required": r.required,
        }
        for r in draft
    ] + [{"target": "", "source": "", "transform": "", "default": "", "required": False}] * (
        REDRIVE_ROWS_EXTRA
    )

    def shown(preview) -> str:
        if preview.ok:
            return shown_json(preview.inputs)
        return redact_text("; ".join(r.error for r in preview.rows if r.error))

    return render(
        request,
        "admin/integrations/redrive.html",
        {
            **admin_site_context(request),
            "title": f"Fix and re-drive error group {group.pk}",
            "group": group,
            "step": step,
            "rows": rows,
            "row_count": len(rows),
            "results": [
                {
                    "job_id": r.job_id,
                    "reference": r.reference,
                    "old": shown(r.old),
                    "new": shown(r.new),
                    "old_ok": r.old.ok,
                    "new_ok": r.new.ok,
                }
                for r in plan.rows
            ],
            "fixed": sum(1 for r in plan.rows if r.new.ok),
            "problems": errors + plan.problems,
            "tried": request.method == "POST",
            "group_url": reverse("admin:integrations_errorgroup_change", args=[group.pk]),
        },
    )


def admin_site_context(request: HttpRequest) -> dict:
    from django.contrib import admin

    return admin.site.each_context(request)
