"""A worker process for test_worker_stop.py, outside pytest (run as a script).

``setup``: migrate the database named by DATABASE_URL, install a two-step flow whose
first step is slow, and queue one job of it. ``run``: ``manage.py worker``, with the
slow test action registered. The slow step writes ``STEP_STARTED_FILE`` when it
starts, so the test knows a job is in flight.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"

import django

django.setup()

from django.core.management import call_command  # noqa: E402

from integrations.registry import action  # noqa: E402


@action("tests.slow", description="Sleeps a while, like a slow API call.")
def slow(*, ctx, seconds: str = "2") -> dict:
    Path(os.environ["STEP_STARTED_FILE"]).write_text(str(ctx.job.pk))
    time.sleep(float(seconds))
    return {"slept": seconds}


@action("tests.after", description="The step after the slow one.")
def after(*, ctx) -> dict:
    return {"ran": True}


def setup() -> None:
    from integrations.models import Flow, FlowStep, Job, Mapping, MappingField
    from integrations.services.jobs import jobs_enqueue

    call_command("migrate", verbosity=0)
    flow = Flow.objects.create(
        key="slow", name="slow", trigger_source="schedule", trigger_event="tick"
    )
    mapping = Mapping.objects.create(key="slow-step")
    MappingField.objects.create(mapping=mapping, position=0, target="seconds", source="'2'")
    FlowStep.objects.create(
        flow=flow, position=1, name="slow", action="tests.slow", mapping=mapping
    )
    FlowStep.objects.create(flow=flow, position=2, name="after", action="tests.after")
    job = Job.objects.create(flow=flow, max_attempts=3, context={})
    jobs_enqueue([job.pk])


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup()
    else:
        call_command("worker")
