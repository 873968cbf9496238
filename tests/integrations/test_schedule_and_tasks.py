import random

import pytest
from django_q.models import Schedule

from integrations import tasks
from integrations.retry import RetryPolicy
from integrations.services import inbox
from tests.conftest import make_flow, make_job


@pytest.mark.django_db
def test_migrate_installs_the_sweeper_schedule():
    schedule = Schedule.objects.get(name="integrations.sweeper")
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        "integrations.tasks.run_sweeper",
        Schedule.MINUTES,
        1,
        -1,
    )


@pytest.mark.django_db
def test_task_entry_points_call_the_services(integration, clock):
    job = make_job(make_flow("t", steps=[("a", "tests.echo", {})]), integration)
    assert tasks.run_job(job.pk) == "succeeded"
    assert tasks.run_job(job.pk) == "skipped"
    assert tasks.drain_inbox() == 0
    assert tasks.run_sweeper() == {"routed": 0, "enqueued": 0}


def test_nudge_sends_a_real_drain_task(monkeypatch, settings):
    queued = []
    monkeypatch.setattr(
        "django_q.tasks.async_task", lambda func, **kw: queued.append((func, kw["group"]))
    )
    settings.INTEGRATIONS = {**settings.INTEGRATIONS, "INBOX_NUDGE_INTERVAL": 0}
    inbox.inbox_nudge()
    assert queued == [("integrations.tasks.drain_inbox", "inbox")]


@pytest.mark.parametrize("attempt", range(1, 12))
def test_backoff_grows_exponentially_within_jitter_bounds(attempt):
    policy = RetryPolicy(max_attempts=12, base_seconds=30, max_seconds=3600)
    ceiling = min(3600, 30 * 2 ** (attempt - 1))
    rng = random.Random(attempt)
    delays = [policy.delay(attempt, rng=rng) for _ in range(200)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert max(delays) - min(delays) > ceiling / 4  # jitter actually spreads retries


def test_retry_after_wins_but_is_capped(settings):
    policy = RetryPolicy(max_attempts=5, base_seconds=1, max_seconds=10)
    assert policy.delay(1, retry_after=90) == 90
    assert policy.delay(1, retry_after=10**9) == settings.INTEGRATIONS["RETRY_AFTER_MAX_SECONDS"]
    assert 0.5 <= policy.delay(1, retry_after=0) <= 1
