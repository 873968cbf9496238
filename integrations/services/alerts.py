"""Alerts: tell the ops team, by email and chat webhook, when money stops flowing.

Checked every ``ALERTS_EVERY_MINUTES`` (a django-q2 schedule) against the rules in the
admin (:class:`~integrations.models.AlertRule`, one per kind):

- an **error group** opens with jobs out of automatic retries, or grows past a
  threshold (and then at each doubling). Jobs still waiting for a retry raise nothing:
  the retries may well fix them. Groups of the drift check's flow are alerted as
  **reconciliation discrepancies**, as are the signals reconciliation registers
  (payouts that do not tie out, :func:`integrations.registry.alert_source`);
- the **backlog** of jobs waiting to run, or the **latency** (the oldest one's wait),
  passes a threshold;
- a **connection keeps failing**: its last N calls all failed (transport errors,
  5xx, 401/403) over at least the rule's span, with no success in between.

The same alert (same kind and object) goes out at most once per the rule's repeat
window; a repeat within it is counted on the alert sent. At most
``ALERTS_MAX_AT_ONCE`` alerts go out per check, the rest are held; held alerts and
counted repeats go out together as one digest at most every
``ALERTS_DIGEST_MINUTES``. So an outage is one alert and a digest, not a storm.
Every alert is recorded (:class:`~integrations.models.Alert`) with its deliveries,
whether or not a channel took it.

Delivery is at least once: an alert is marked *sending* before it leaves, and one
left *sending* by a crash is sent again after ten minutes. Webhook requests carry
``Idempotency-Key: alert-<id>``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from integrations.choices import (
    ALWAYS_SENT_KINDS,
    AlertChannelKind,
    AlertKind,
    AlertStatus,
    ErrorGroupState,
    JobStatus,
)
from integrations.fields import reveal
from integrations.kernel.redaction import redact_text
from integrations.models import Alert, AlertChannel, AlertRule, ApiCall, Connection, ErrorGroup
from integrations.registry import alert_kind_of_flow, alert_signals
from integrations.services.error_groups import error_group_jobs_by_status, error_group_orders

logger = logging.getLogger("integrations.alerts")

# Each kind's rule as shipped (the admin changes them; a kind without a row uses this).
DEFAULT_RULES: dict[str, dict[str, int]] = {
    AlertKind.GROUP_OPENED: {"threshold": 1},
    AlertKind.GROUP_GREW: {"threshold": 25},
    AlertKind.BACKLOG: {"threshold": 1000},
    AlertKind.LATENCY: {"threshold": 900},
    AlertKind.CONNECTION_FAILING: {"threshold": 5, "sustained_seconds": 30},
    AlertKind.RECONCILIATION: {"threshold": 1},
}
# Groups looked at per check: the open ones seen most recently.
GROUPS_CHECKED = 500
# How far back a connection's calls are read for "keeps failing".
CONNECTION_LOOKBACK = timedelta(minutes=30)
# A delivery left "sending" this long was lost with its process: sent again.
SENDING_STALE = timedelta(minutes=10)
WEBHOOK_TIMEOUT = (3.05, 10.0)
# Deliveries of one alert before it is left failed.
MAX_TRIES = 3
ORDERS_SHOWN = 10


def _setting(name: str) -> int:
    return int(settings.INTEGRATIONS[name])


def alert_rules_install() -> int:
    """Give every kind its rule row, as shipped, where it has none (post_migrate)."""
    made = 0
    for kind, values in DEFAULT_RULES.items():
        _, created = AlertRule.objects.get_or_create(kind=kind, defaults=values)
        made += created
    return made


def alert_rules() -> dict[str, AlertRule]:
    rules = {rule.kind: rule for rule in AlertRule.objects.all()}
    for kind, values in DEFAULT_RULES.items():
        rules.setdefault(kind, AlertRule(kind=kind, **values))
    return rules


def alert_link(path: str) -> str:
    """A line with the address of ``path`` on the platform (none: ALERTS_SITE_URL unset)."""
    base = str(settings.INTEGRATIONS.get("ALERTS_SITE_URL") or "").rstrip("/")
    return f"\n{base}{path}" if base else ""


# --- raising ------------------------------------------------------------------------------
@dataclass
class _Check:
    """One alert check: the rules, the time, and how many alerts it let go out."""

    rules: dict[str, AlertRule]
    now: datetime
    raised: int = 0
    repeated: int = 0
    released: int = 0

    def raise_alert(
        self,
        *,
        kind: str,
        key: str,
        subject: str,
        text: str,
        rule_kind: str | None = None,
        once: bool = False,
        error_group: ErrorGroup | None = None,
    ) -> Alert | None:
        """Record an alert, to go out now or in the digest; a repeat of one already
        raised (within the rule's repeat window, or ever when ``once``) is only counted
        on it. Returns the new alert, or None for a repeat."""
        rule = self.rules[rule_kind or kind]
        earlier = Alert.objects.filter(key=key).exclude(kind=AlertKind.DIGEST)
        if not once:
            earlier = earlier.filter(
                created_at__gte=self.now - timedelta(minutes=rule.repeat_minutes)
            )
        previous = earlier.order_by("-created_at", "-id").first()
        if previous is not None:
            if not once:  # a condition still holding: reported in the digest
                Alert.objects.filter(pk=previous.pk).update(repeats=F("repeats") + 1)
                self.repeated += 1
            return None
        at_once = self.released < _setting("ALERTS_MAX_AT_ONCE")
        self.released += at_once
        self.raised += 1
        alert = Alert.objects.create(
            kind=kind,
            key=key[:200],
            subject=redact_text(subject)[:300],
            text=redact_text(text),
            status=AlertStatus.PENDING if at_once else AlertStatus.HELD,
            error_group=error_group,
        )
        logger.warning("integrations.alerts.raised kind=%s key=%s alert=%s", kind, key, alert.pk)
        return alert


def _group_text(group: ErrorGroup, counts: dict[str, int]) -> str:
    out = counts.get(JobStatus.QUARANTINED, 0)
    waiting = counts.get(JobStatus.RETRYING, 0)
    orders = error_group_orders(group, limit=ORDERS_SHOWN + 1)
    shown = ", ".join(orders[:ORDERS_SHOWN]) + (" …" if len(orders) > ORDERS_SHOWN else "")
    link = alert_link(reverse("admin:integrations_errorgroup_change", args=[group.pk]))
    return (
        f"Flow {group.flow.key}, step {group.step or '-'}: {group.error_class}\n"
        f"{group.sample[:500]}\n"
        f"{out} job(s) out of retries, {waiting} waiting for a retry; "
        f"{group.occurrences} failure(s) since {group.first_seen_at:%Y-%m-%d %H:%M} UTC.\n"
        f"Orders: {shown or '-'}{link}"
    )


def _source_failed(source: Any, error: Exception) -> None:
    logger.error(
        "integrations.alerts.source_failed source=%s error=%s",
        getattr(source, "__qualname__", source),
        type(error).__name__,
        exc_info=error,
    )


def _check_groups(check: _Check) -> None:
    groups = list(
        ErrorGroup.objects.filter(state=ErrorGroupState.OPEN)
        .select_related("flow")
        .order_by("-last_seen_at")[:GROUPS_CHECKED]
    )
    counts = error_group_jobs_by_status(
        [g.pk for g in groups], statuses=(JobStatus.QUARANTINED, JobStatus.RETRYING)
    )
    grew = check.rules[AlertKind.GROUP_GREW]
    for group in groups:
        out = counts[group.pk].get(JobStatus.QUARANTINED, 0)
        if not out:
            continue  # nothing is out of retries yet: the retries may fix it
        kind = alert_kind_of_flow(group.flow.key, AlertKind.GROUP_OPENED)
        opened = check.rules[kind]
        if group.alerted_at is None:
            if not opened.enabled or out < opened.threshold:
                continue
            what = "Discrepancy" if kind == AlertKind.RECONCILIATION else "Error group"
            check.raise_alert(
                kind=kind,
                key=f"group:{group.pk}",
                subject=f"{what}: {group.flow.key} [{group.step or '-'}] {group.message[:150]}",
                text=_group_text(group, counts[group.pk]),
                error_group=group,
            )
        else:
            if not grew.enabled or out < max(grew.threshold, 2 * group.alerted_size):
                continue
            check.raise_alert(
                kind=AlertKind.GROUP_GREW,
                key=f"group:{group.pk}:grew",
                subject=f"Error group grew to {out} jobs: {group.flow.key} "
                f"[{group.step or '-'}] {group.message[:120]}",
                text=_group_text(group, counts[group.pk]),
                error_group=group,
            )
        ErrorGroup.objects.filter(pk=group.pk).update(
            alerted_at=group.alerted_at or check.now, alerted_size=out
        )


def _check_backlog(check: _Check) -> None:
    from integrations.services.health import backlog_read

    backlog, latency = check.rules[AlertKind.BACKLOG], check.rules[AlertKind.LATENCY]
    if not (backlog.enabled or latency.enabled):
        return
    state = backlog_read(check.now, limit=max(backlog.threshold, 1))
    waiting = state["jobs_waiting"] + state["events_waiting"]
    if backlog.enabled and (waiting >= backlog.threshold or state["more"]):
        check.raise_alert(
            kind=AlertKind.BACKLOG,
            key="backlog",
            subject=f"Backlog: {waiting}{'+' if state['more'] else ''} waiting to run",
            text=f"{state['jobs_waiting']} job(s) wait to run and {state['events_waiting']} "
            f"event(s) to be routed (threshold {backlog.threshold}). Are the workers up?"
            + alert_link("/health/"),
        )
    wait = state["oldest_job_wait_seconds"]
    if latency.enabled and wait is not None and wait >= latency.threshold:
        check.raise_alert(
            kind=AlertKind.LATENCY,
            key="latency",
            subject=f"Latency: the oldest job has waited {wait:.0f} s",
            text=f"A job has waited {wait:.0f} s to run (threshold {latency.threshold} s)."
            + alert_link("/health/"),
        )


def _failed(call: ApiCall) -> bool:
    """The connection failed this call: it could not be reached, failed itself, or
    refused our credentials (a 4xx about one request's data is not the connection's)."""
    return bool(call.error and call.status_code is None) or (
        call.status_code is not None and (call.status_code >= 500 or call.status_code in (401, 403))
    )


def connection_failing(connection: Connection, *, rule: AlertRule, now: datetime) -> str:
    """Why ``connection`` keeps failing by ``rule`` (empty: it does not)."""
    needed = max(rule.threshold, 1)
    calls = list(
        ApiCall.objects.filter(connection=connection, created_at__gte=now - CONNECTION_LOOKBACK)
        .order_by("-created_at", "-id")
        .only("created_at", "status_code", "error")[:needed]
    )
    if len(calls) < needed or not all(_failed(call) for call in calls):
        return ""
    span = (calls[0].created_at - calls[-1].created_at).total_seconds()
    if span < rule.sustained_seconds:
        return ""
    last = calls[0]
    answer = f"HTTP {last.status_code}" if last.status_code else (last.error or "no answer")
    return (
        f"its last {needed} calls failed over {span:.0f} s, the latest at "
        f"{last.created_at:%H:%M:%S} UTC: {answer[:300]}"
    )


def _check_connections(check: _Check) -> None:
    rule = check.rules[AlertKind.CONNECTION_FAILING]
    if not rule.enabled:
        return
    for connection in Connection.objects.filter(enabled=True).order_by("name"):
        why = connection_failing(connection, rule=rule, now=check.now)
        if why:
            check.raise_alert(
                kind=AlertKind.CONNECTION_FAILING,
                key=f"connection:{connection.pk}",
                subject=f"Connection {connection.name} keeps failing",
                text=f"{connection} keeps failing: {why}. Jobs that need it wait for their "
                "retries; once it answers again, retry its error groups."
                + alert_link(reverse("admin:integrations_connection_change", args=[connection.pk])),
            )


def _check_sources(check: _Check) -> None:
    for signal in alert_signals(now=check.now, failed=_source_failed):
        rule = check.rules.get(signal.kind)
        if rule is None or not rule.enabled:
            continue
        check.raise_alert(
            kind=signal.kind,
            key=signal.key,
            subject=signal.subject,
            text=signal.text,
            once=signal.once,
        )


def alerts_raise(*, now: datetime | None = None) -> _Check:
    """Check every rule once and record what it raises (nothing is sent here)."""
    check = _Check(rules=alert_rules(), now=now or timezone.now())
    with transaction.atomic():
        # One check at a time: the rule rows are its lock (a check is short).
        _lock_rules()
        # Each part on its own: one that fails (a row it cannot read) is logged and
        # the others still raise. Groups last: their rows stay locked until the end.
        for part in (_check_sources, _check_connections, _check_backlog, _check_groups):
            try:
                with transaction.atomic():
                    part(check)
            except Exception:
                logger.exception("integrations.alerts.check_failed part=%s", part.__name__)
    return check


def _lock_rules() -> None:
    list(AlertRule.objects.select_for_update().order_by("kind").values_list("pk", flat=True))


# --- sending ------------------------------------------------------------------------------
def _deliver(channel: AlertChannel, alert: Alert) -> dict[str, Any]:
    started = time.monotonic()
    entry: dict[str, Any] = {"channel": channel.name, "at": timezone.now().isoformat()}
    try:
        if channel.kind == AlertChannelKind.EMAIL:
            to = [a.strip() for a in channel.recipients.split(",") if a.strip()]
            if not to:
                raise ValueError("no recipients")
            send_mail(f"[integrations] {alert.subject}", alert.text, None, to)
            entry["ok"], entry["answer"] = True, f"mailed to {len(to)} address(es)"
        else:
            url = reveal(channel.webhook_url) or ""
            if not url:
                raise ValueError("no webhook URL")
            response = requests.post(
                url,
                json={"text": f"*{alert.subject}*\n{alert.text}"},
                headers={"Idempotency-Key": f"alert-{alert.pk}"},
                timeout=WEBHOOK_TIMEOUT,
            )
            entry["ok"] = 200 <= response.status_code < 300
            entry["answer"] = f"HTTP {response.status_code}"
    except Exception as error:  # recorded on the alert; the URL (a secret) never is
        entry["ok"] = False
        entry["answer"] = redact_text(f"{type(error).__name__}: {error}")[:300]
        if channel.kind == AlertChannelKind.WEBHOOK:
            entry["answer"] = f"{type(error).__name__} (the request did not complete)"
    entry["ms"] = int((time.monotonic() - started) * 1000)
    return entry


def alert_send(alert: Alert, *, channels: Iterable[AlertChannel]) -> str:
    """Send one alert to every channel that takes its kind and has not had it yet;
    returns its new status. A channel that failed is tried again at the next check,
    ``MAX_TRIES`` times in all; the alert is *sent* once every channel had it (or ran
    out of tries after one did), *failed* when none did. A test from the admin is
    tried once, to its own channel only."""
    takers = [c for c in channels if c.takes(alert.kind)]
    if not takers:
        Alert.objects.filter(pk=alert.pk).update(status=AlertStatus.NO_CHANNEL)
        return AlertStatus.NO_CHANNEL
    done = {d["channel"] for d in alert.deliveries if d.get("ok")}
    tries: dict[str, int] = {}
    for d in alert.deliveries:
        tries[d["channel"]] = tries.get(d["channel"], 0) + 1
    results = [_deliver(c, alert) for c in takers if c.name not in done]
    for result in results:
        tries[result["channel"]] = tries.get(result["channel"], 0) + 1
        if result["ok"]:
            done.add(result["channel"])
    budget = 1 if alert.kind == AlertKind.TEST else MAX_TRIES
    left = [c for c in takers if c.name not in done and tries.get(c.name, 0) < budget]
    # Channels left: the next check tries them again.
    status = AlertStatus.PENDING if left else AlertStatus.SENT if done else AlertStatus.FAILED
    Alert.objects.filter(pk=alert.pk).update(
        status=status,
        deliveries=[*alert.deliveries, *results],
        sent_at=alert.sent_at or (timezone.now() if done else None),
    )
    for result in results:
        log = logger.info if result["ok"] else logger.warning
        log(
            "integrations.alerts.delivered alert=%s channel=%s ok=%s %s",
            alert.pk,
            result["channel"],
            result["ok"],
            result["answer"],
        )
    return status


def alerts_send(*, now: datetime | None = None) -> int:
    """Send the alerts waiting to go out (and those a crash left sending)."""
    now = now or timezone.now()
    channels = list(AlertChannel.objects.filter(enabled=True))
    due = Alert.objects.filter(
        Q(status=AlertStatus.PENDING)
        | Q(status=AlertStatus.SENDING, tried_at__lte=now - SENDING_STALE)
    ).order_by("id")
    sent = 0
    for alert in due[:100]:
        claimed = Alert.objects.filter(
            pk=alert.pk, status=alert.status, tried_at=alert.tried_at
        ).update(status=AlertStatus.SENDING, tried_at=now)
        if claimed:  # another check's process did not take it first
            sent += alert_send(alert, channels=channels) == AlertStatus.SENT
    return sent


def alerts_digest(*, now: datetime | None = None, force: bool = False) -> Alert | None:
    """One digest of the held alerts and of the repeats not yet reported (of alerts at
    least ``ALERTS_DIGEST_MINUTES`` old), at most every ``ALERTS_DIGEST_MINUTES``
    (``force``: now). Returns the digest, if one was made."""
    now = now or timezone.now()
    every = timedelta(minutes=_setting("ALERTS_DIGEST_MINUTES"))
    with transaction.atomic():
        _lock_rules()  # one digest at a time, the first one too
        last = (
            Alert.objects.select_for_update()
            .filter(kind=AlertKind.DIGEST)
            .order_by("-created_at")
            .first()
        )
        if not force and last is not None and last.created_at > now - every:
            return None
        held = list(Alert.objects.filter(status=AlertStatus.HELD).order_by("id")[:200])
        # A repeat is reported once its alert is a digest's time old: the alert just
        # sent said it already.
        repeated = list(
            Alert.objects.filter(repeats__gt=F("repeats_digested"), created_at__lte=now - every)
            .exclude(kind__in=ALWAYS_SENT_KINDS)
            .order_by("id")[:200]
        )
        if not held and not repeated:
            return None
        lines = [f"- {a.subject}" for a in held]
        lines += [
            f"- again {a.repeats - a.repeats_digested} time(s) since {a.created_at:%H:%M} UTC: "
            f"{a.subject}"
            for a in repeated
        ]
        digest = Alert.objects.create(
            kind=AlertKind.DIGEST,
            key=f"digest:{now:%Y%m%d%H%M%S}",
            subject=f"Digest: {len(held)} alert(s) held back, {len(repeated)} repeating",
            text="\n".join(lines)[:20000] + alert_link("/admin/integrations/alert/"),
            status=AlertStatus.PENDING,
        )
        Alert.objects.filter(pk__in=[a.pk for a in held]).update(
            status=AlertStatus.DIGESTED, digest=digest
        )
        for alert in repeated:
            Alert.objects.filter(pk=alert.pk).update(repeats_digested=alert.repeats)
    return digest


def alerts_check(*, now: datetime | None = None) -> dict[str, int]:
    """The scheduled check: raise what the rules say, send it, and the digest when due."""
    now = now or timezone.now()
    check = alerts_raise(now=now)
    digest = alerts_digest(now=now)
    sent = alerts_send(now=now)
    return {
        "raised": check.raised,
        "repeated": check.repeated,
        "held": check.raised - check.released,
        "digest": int(digest is not None),
        "sent": sent,
    }
