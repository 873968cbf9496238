"""django-q2 entry points. Thin: each calls one service."""

from integrations.services.inbox import inbox_drain
from integrations.services.jobs import job_run
from integrations.services.sweeper import sweep


def drain_inbox() -> int:
    return inbox_drain()


def run_job(job_id: int) -> str:
    return job_run(job_id=job_id)


def run_sweeper() -> dict[str, int]:
    return sweep()
