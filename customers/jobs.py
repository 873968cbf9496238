"""Sync jobs the customer app files itself (not from an event): the sweep's, the
backfill's, an operator's confirmation. They run the shipped Znode flows, so they
retry, quarantine and show in the admin like any other job."""

from __future__ import annotations

from django.db import transaction

from integrations.choices import JobStatus
from integrations.kernel import exceptions as exc
from integrations.models import Flow, Integration, Job
from integrations.retry import RetryPolicy
from integrations.services.jobs import jobs_enqueue

SYNC_FLOW = "user-updated"
FINISHED = (JobStatus.SUCCEEDED, JobStatus.QUARANTINED, JobStatus.DISCARDED)
# The data itself was refused: filing the same data again would be refused again.
BAD_DATA_CODES = (exc.DataError.code, exc.MappingError.code, exc.BadRequest.code)


def customer_sync_job_file(
    *,
    integration: Integration,
    user_id: int,
    portal_id: int | None,
    why: str,
    flow_key: str = SYNC_FLOW,
    enqueue: bool = True,
    max_attempts: int | None = None,
    seen: str = "",
) -> Job | None:
    """A job of ``flow_key`` that syncs Znode user ``user_id`` (None: one of ours is
    already waiting or running for the user, or, ``seen`` being the fingerprint of the
    data that made the caller file it, a quarantined one holds that very data: until
    someone corrects it, filing it again would only quarantine it again; one that ran
    out of retries on an outage is filed again). ``why`` is
    kept in its context (sweep, backfill, confirmed). Enqueued once the caller's
    transaction commits."""
    flow = Flow.objects.filter(key=flow_key).first()
    if flow is None:
        raise exc.ConnectorConfigurationError(
            f"flow {flow_key} is not installed: run manage.py install_flows"
        )
    reference = f"user:{user_id}"
    busy = Job.objects.filter(integration=integration, reference=reference).exclude(
        status__in=FINISHED
    )
    if busy.exists():
        return None
    if seen and (
        Job.objects.filter(
            integration=integration,
            reference=reference,
            status=JobStatus.QUARANTINED,
            last_error_code__in=BAD_DATA_CODES,  # not one that ran out of retries
            context__seen=seen,
        ).exists()
    ):
        return None
    context = {"customer": {"user_id": user_id, "portal_id": portal_id}, "filed_by": why}
    if seen:
        context["seen"] = seen
    job = Job.objects.create(
        flow=flow,
        integration=integration,
        context=context,
        max_attempts=max_attempts or RetryPolicy.for_flow(flow).max_attempts,
        reference=reference,
    )
    if enqueue:
        transaction.on_commit(lambda: jobs_enqueue([job.pk]))
    return job
