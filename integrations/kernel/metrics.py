"""Prometheus metrics of the platform, served at ``GET /metrics``.

Counted where the work happens, in whichever process does it: webhook intake (web
processes), jobs and attempts (workers), outbound API calls (both). Those processes
share what they count through prometheus-client's multiprocess mode: each writes its
values to files in ``PROMETHEUS_MULTIPROC_DIR`` (set by the settings, under
``VAR_DIR``, before this module is imported), and ``/metrics`` adds up every
process's files on that machine. The directory is emptied when the platform starts
(``serve``, ``demo``; in a deployment, before the web and worker processes start).

Labels are bounded: a connection's name, a flow's key, an outcome from a short list,
never an id."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from integrations.kernel import stats

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

WEBHOOKS = Histogram(
    "integrations_webhook_duration_seconds",
    "Webhook requests received, by system and outcome (accepted, duplicate, "
    "rejected_<status>), and how long each took to answer.",
    ["kind", "outcome"],
    buckets=_SECONDS,
)
JOBS = Counter(
    "integrations_jobs_finished_total",
    "Job runs that ended, by flow and outcome (succeeded, retrying, quarantined, released).",
    ["flow", "outcome"],
)
ATTEMPTS = Histogram(
    "integrations_attempt_duration_seconds",
    "Attempts of jobs, by flow and outcome, and how long each ran.",
    ["flow", "outcome"],
    buckets=_SECONDS,
)
API_CALLS = Histogram(
    "integrations_api_call_duration_seconds",
    "Outbound API calls, by connection and outcome (2xx, 3xx, 4xx, 5xx, or the "
    "error's kind when no answer came), and how long each took.",
    ["connection", "outcome"],
    buckets=_SECONDS,
)


def api_call_outcome(status_code: int | None, error: str) -> str:
    if status_code:
        return f"{status_code // 100}xx"
    return (error.partition(":")[0] or "error")[:60]


def observe_api_call(connection: str, status_code: int | None, error: str, ms: int) -> None:
    outcome = api_call_outcome(status_code, error)
    API_CALLS.labels(connection or "-", outcome).observe(ms / 1000)
    failed = not status_code or status_code >= 500
    stats.count("api_error" if failed else "api_call", connection=connection, total=ms)


def exposition() -> tuple[bytes, str]:
    """The text format of every process's metrics on this machine (one process's
    alone when multiprocess mode is off)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def multiprocess_dir_clear(path: str | None = None) -> None:
    """Empty the multiprocess directory: before the platform's processes start
    (files of processes from an earlier run would be added up with the new ones)."""
    path = path or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path or not os.path.isdir(path):
        return
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))
