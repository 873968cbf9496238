"""``manage.py sync_customers`` (issue 11, Deliver 6): every Znode user linked to one
Stripe customer, with a progress bar and a summary; resumable from a cursor in the
database; a second run changes nothing; a dry run writes nothing."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from customers.backfill import customers_backfill
from customers.models import CustomerBackfill, CustomerLink
from integrations.choices import JobStatus
from integrations.kernel import exceptions as exc
from integrations.models import ApiCall, Job
from tests.customers.test_sync import AUSTIN

pytestmark = pytest.mark.django_db


def backfill(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("sync_customers", "--integration", "customers", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def store_users(synced) -> list[int]:
    return [int(row["UserId"]) for row in synced.znode().list_customers()]


def stripe_calls(operation: str) -> int:
    return ApiCall.objects.filter(operation__endswith=operation).count()


def test_a_thousand_customers_are_linked_once_and_a_second_run_changes_nothing(synced):
    for i in range(1000):
        synced.create_user(email=f"shopper{i}@example.com", address=AUSTIN)
    users = store_users(synced)
    total = len(users)
    assert total >= 1000

    summary, progress = backfill()

    assert summary == (
        f"linked {total}, created {total}, matched 0, updated 0, unchanged 0, quarantined 0"
    )
    assert f"{total}/{total}" in progress  # the bar knows the total (Znode's TotalResults)
    assert CustomerLink.objects.count() == total
    assert stripe_calls("customer.create") == total
    assert CustomerBackfill.objects.get().finished_at is not None

    calls = ApiCall.objects.count()
    summary, _ = backfill()

    assert summary == (
        f"linked 0, created 0, matched 0, updated 0, unchanged {total}, quarantined 0"
    )
    # Only the pages of users (and the empty one that ends the list) and their
    # addresses were read: no call per user.
    pages = -(-total // 100)
    assert ApiCall.objects.count() - calls == 2 * pages + 1
    assert CustomerLink.objects.count() == total


def test_an_interrupted_run_resumes_after_the_last_user_it_finished(synced):
    for i in range(30):
        synced.create_user(email=f"resume{i}@example.com", address=AUSTIN)
    users = store_users(synced)
    done = []

    def stop_after_ten(n: int) -> None:
        done.append(n)
        if len(done) == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        customers_backfill(integration=synced.integration, progress=stop_after_ten)
    cursor = CustomerBackfill.objects.get()
    assert cursor.after_user_id == users[9] and cursor.finished_at is None
    assert cursor.counts == {"linked": 10, "created": 10}

    summary, _ = backfill("--no-progress")

    rest = len(users) - 10
    assert summary.splitlines() == [
        f"resumed after Znode user {users[9]}",
        f"linked {len(users)}, created {len(users)}, matched 0, updated 0, unchanged 0, "
        "quarantined 0",
    ]
    assert CustomerLink.objects.count() == len(users) and stripe_calls("customer.create") == (
        10 + rest
    )


def test_a_dry_run_reads_both_systems_and_writes_nothing(synced):
    synced.stripe("POST", "/v1/customers", email="known@example.com")
    synced.create_user(email="known@example.com", address=AUSTIN)
    synced.create_user(email="bad-at-example.com", address=AUSTIN)
    total = len(store_users(synced))

    summary, _ = backfill("--dry-run", "--no-progress")

    assert summary == (
        f"dry run (nothing written): would create {total - 2}, would match 1, "
        "would update 0, unchanged 0, invalid 1"
    )
    assert not ApiCall.objects.exclude(method="GET").exists()
    assert not CustomerLink.objects.exists() and not CustomerBackfill.objects.exists()


def test_a_user_stripe_cannot_take_is_quarantined_and_the_rest_linked(synced):
    bad = synced.create_user(email="bad-at-example.com", address=AUSTIN)
    total = len(store_users(synced))

    summary, _ = backfill("--no-progress")

    assert summary == (
        f"linked {total - 1}, created {total - 1}, matched 0, updated 0, unchanged 0, quarantined 1"
    )
    job = Job.objects.get(status=JobStatus.QUARANTINED)
    assert job.flow.key == "user-updated" and job.context["customer"]["user_id"] == bad["UserId"]
    assert "email 'bad-at-example.com' is not a valid email address" in job.last_error

    summary, _ = backfill("--no-progress", "--restart")  # the same data: no second job

    assert summary.endswith("quarantined 1")
    assert Job.objects.filter(status=JobStatus.QUARANTINED).count() == 1


def test_a_user_whose_customer_another_user_holds_is_not_a_stop(synced):
    """Two users of one email (a guest and an account, two stores): the second gets a
    customer of its own, and the run goes on."""
    made = synced.stripe("POST", "/v1/customers", email="pair@example.com")
    synced.create_user(email="pair@example.com")
    synced.create_user(email="pair@example.com", portal_id=2)
    total = len(store_users(synced))

    summary, _ = backfill("--no-progress")

    assert summary.startswith(f"linked {total}, created {total - 1}, matched 1,")
    assert CustomerLink.objects.filter(stripe_customer_id=made["id"]).count() == 1


def test_since_limits_the_run_to_users_modified_after_it(synced):
    tomorrow = (timezone.localdate() + timedelta(days=2)).isoformat()
    summary, _ = backfill("--since", tomorrow, "--no-progress")
    assert summary == "linked 0, created 0, matched 0, updated 0, unchanged 0, quarantined 0"


def test_a_bad_since_or_integration_is_a_clear_error(synced):
    with pytest.raises(CommandError, match="--since 'soon' is no date"):
        backfill("--since", "soon")
    with pytest.raises(CommandError, match="no integration named 'nope'"):
        call_command("sync_customers", "--integration", "nope")


def refuse_creates(monkeypatch, error, emails=None):
    """Stripe refusing customer creates (at the connector's client boundary)."""
    from integrations.connectors.stripe.client import StripeGateway

    real = StripeGateway.customer_create

    def create(self, *, params, idempotency_key):
        if emails is None or params.get("email") in emails:
            raise error
        return real(self, params=params, idempotency_key=idempotency_key)

    monkeypatch.setattr(StripeGateway, "customer_create", create)


def test_a_refusal_not_about_the_data_quarantines_that_user_and_the_run_goes_on(
    synced, monkeypatch
):
    synced.create_user(email="refused@example.com")
    total = len(store_users(synced))
    refuse_creates(
        monkeypatch, exc.BadRequest("account cannot create customers now"), {"refused@example.com"}
    )

    summary, _ = backfill("--no-progress")

    assert summary.startswith(f"linked {total - 1}, created {total - 1}, ")
    assert summary.endswith("quarantined 1")
    [job] = Job.objects.filter(status=JobStatus.QUARANTINED)
    assert "account cannot create customers now" in job.last_error


def test_refusals_of_every_user_stop_the_run_and_unauthorized_stops_it_at_once(synced, monkeypatch):
    monkeypatch.setattr("customers.backfill.REFUSALS_TO_STOP", 3)
    for i in range(5):
        synced.create_user(email=f"all{i}@example.com")
    refuse_creates(monkeypatch, exc.BadRequest("customers are disabled on this account"))

    with pytest.raises(CommandError, match="refused the last 3 users"):
        backfill("--no-progress")
    assert Job.objects.filter(status=JobStatus.QUARANTINED).count() == 3

    refuse_creates(monkeypatch, exc.Unauthorized("Invalid API Key provided"))
    with pytest.raises(CommandError, match="Invalid API Key"):
        backfill("--no-progress")
    assert Job.objects.filter(status=JobStatus.QUARANTINED).count() == 3  # none filed


def test_a_job_quarantined_by_an_outage_does_not_hold_the_user_back(synced):
    from customers.jobs import customer_sync_job_file

    user = synced.create_user(email="outage@example.com")

    def file():
        return customer_sync_job_file(
            integration=synced.integration,
            user_id=user["UserId"],
            portal_id=1,
            why="sweep",
            enqueue=False,
            seen="state-1",
        )

    first = file()
    Job.objects.filter(pk=first.pk).update(
        status=JobStatus.QUARANTINED, last_error_code="unavailable"
    )
    second = file()  # out of retries on an outage: the same data is filed again
    assert second is not None and second.pk != first.pk
    Job.objects.filter(pk=second.pk).update(
        status=JobStatus.QUARANTINED, last_error_code="bad_data"
    )
    assert file() is None  # refused for its data: not again until the data changes
