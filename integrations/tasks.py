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


def poll_znode(connection_id: int) -> dict[str, int]:
    from integrations.models import Connection
    from integrations.services.polling import znode_poll

    connection = Connection.objects.filter(pk=connection_id).first()
    if connection is None:
        return {"skipped": 1}
    result = znode_poll(connection=connection)
    return {"created": result.created, "updated": result.updated, "skipped": int(result.skipped)}
