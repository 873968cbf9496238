"""django-q2 entry points. Thin: each calls one service.

Every entry point also makes sure this worker process runs its retry waker
(:class:`integrations.services.jobs.RetryWaker`), so due retries start on time in any
process that does our work, including one that just replaced a dead worker.
"""

from integrations.services.inbox import inbox_drain
from integrations.services.jobs import job_run, retry_waker
from integrations.services.sweeper import sweep


def drain_inbox() -> int:
    retry_waker.ensure()
    return inbox_drain()


def run_job(job_id: int) -> str:
    retry_waker.ensure()
    return job_run(job_id=job_id)


def run_sweeper() -> dict[str, int]:
    retry_waker.ensure()
    return sweep()


def check_alerts() -> dict[str, int]:
    from integrations.services.alerts import alerts_check

    retry_waker.ensure()
    return alerts_check()


def poll_connection(connection_id: int) -> dict[str, int]:
    from integrations.models import Connection
    from integrations.services.polling import connection_poll

    retry_waker.ensure()
    connection = Connection.objects.filter(pk=connection_id).first()
    if connection is None:
        return {"skipped": 1}
    result = connection_poll(connection=connection)
    return {"created": result.created, "updated": result.updated, "skipped": int(result.skipped)}


# Schedules and queued tasks written before polling went through the connector
# registry name this; the next schedule sync renames them.
poll_znode = poll_connection
