"""The address-book sweep (issue 11): a 9.x store announces no address edit and its
address list cannot be asked for edits by date (reference §6: it filters on the
user-address link), so linked users' address books are re-read in turns and a moved
address starts one sync job."""

from __future__ import annotations

import pytest

from customers.models import CustomerSweep
from customers.sweep import customers_sweep, integration_sweep
from integrations.choices import JobStatus
from integrations.models import Job
from integrations.services.jobs import job_run
from tests.customers.test_sync import address_of, linked_user, znode_address

pytestmark = pytest.mark.django_db


def test_an_address_edited_without_any_event_is_found_and_synced_once(synced):
    user, _ = linked_user(synced, email="quiet@example.com")
    linked_user(synced, email="still@example.com")
    row = znode_address(synced, user["UserId"])
    synced.znode().update_address(
        user_id=user["UserId"], address_id=row["AddressId"], changes={"Address1": "3 New Rd"}
    )

    [job_id] = integration_sweep(synced.integration)

    job = Job.objects.get(pk=job_id)
    assert job.flow.key == "address-updated" and job.reference == f"user:{user['UserId']}"
    assert integration_sweep(synced.integration) == []  # round over; the job is pending
    job_run(job_id=job_id)
    [customer] = synced.stripe_customers("quiet@example.com")
    assert address_of(customer)["line1"] == "3 New Rd"
    CustomerSweep.objects.update(after_user_id=0)
    assert integration_sweep(synced.integration) == []  # in step again: no job


def test_the_sweep_goes_round_in_batches(synced):
    users = [linked_user(synced, email=f"round{i}@example.com")[0]["UserId"] for i in range(3)]

    assert integration_sweep(synced.integration, batch=2) == []
    assert CustomerSweep.objects.get().after_user_id == users[1]
    integration_sweep(synced.integration, batch=2)
    assert CustomerSweep.objects.get().after_user_id == users[2]
    integration_sweep(synced.integration, batch=2)  # nothing after the last: start over
    assert CustomerSweep.objects.get().after_user_id == 0


def test_only_polled_stores_are_swept(synced):
    user, _ = linked_user(synced, email="polled@example.com")
    row = znode_address(synced, user["UserId"])
    synced.znode().update_address(
        user_id=user["UserId"], address_id=row["AddressId"], changes={"Address1": "4 New Rd"}
    )
    assert customers_sweep() == {"started": 0}  # webhooks (poll off): nothing to sweep

    znode = synced.integration.znode
    znode.settings = {**znode.settings, "poll": True}
    znode.save()
    assert customers_sweep() == {"started": 1}


def test_an_address_stripe_cannot_take_is_quarantined_once_not_every_round(synced):
    user, _ = linked_user(synced, email="toolong@example.com")
    row = znode_address(synced, user["UserId"])
    synced.znode().update_address(
        user_id=user["UserId"], address_id=row["AddressId"], changes={"CountryCode": "XX"}
    )

    [job_id] = integration_sweep(synced.integration)
    job_run(job_id=job_id)
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.QUARANTINED and "country" in job.last_error

    for _ in range(3):  # the next rounds find the same bad data: no second job
        CustomerSweep.objects.update(after_user_id=0)
        assert integration_sweep(synced.integration) == []

    synced.znode().update_address(  # corrected in Znode: the next round syncs it
        user_id=user["UserId"],
        address_id=row["AddressId"],
        changes={"CountryCode": "US", "Address1": "4 Fixed Rd"},
    )
    CustomerSweep.objects.update(after_user_id=0)
    [fixed] = integration_sweep(synced.integration)
    job_run(job_id=fixed)
    assert Job.objects.get(pk=fixed).status == JobStatus.SUCCEEDED
