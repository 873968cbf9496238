import json

import pytest
from django.utils import timezone

from integrations.models import InboundEvent
from integrations.services.intake_writer import GroupCommitWriter, _Slot, insert_events


def row(connection_id, external_id):
    return {
        "connection": connection_id,
        "external_id": external_id,
        "event_type": "payment_intent.succeeded",
        "source": "webhook",
        "status": "received",
        "status_reason": "",
        "object_id": "pi_1",
        "reference": "ORD-1",
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"id": external_id}),
        "remote_addr": "127.0.0.1",
        "occurred_at": None,
        "received_at": timezone.now(),
        "deliveries": 1,
    }


@pytest.mark.django_db
def test_insert_reports_new_rows_and_duplicates(stripe_connection):
    pk = stripe_connection.pk
    first = insert_events([row(pk, "evt_a"), row(pk, "evt_b"), row(pk, "evt_a")])
    assert first[0] and first[1] and first[2] is None  # the repeat within the batch
    again = insert_events([row(pk, "evt_b"), row(pk, "evt_c")])
    assert again[0] is None and again[1]
    assert sorted(InboundEvent.objects.values_list("external_id", flat=True)) == [
        "evt_a",
        "evt_b",
        "evt_c",
    ]
    stored = InboundEvent.objects.get(external_id="evt_a")
    assert stored.headers == {"Content-Type": "application/json"}
    assert stored.remote_addr == "127.0.0.1"


@pytest.mark.django_db(transaction=True)
def test_concurrent_rows_share_one_commit(stripe_connection):
    writer = GroupCommitWriter()
    pk = stripe_connection.pk
    slots = [_Slot(row(pk, f"evt_{n}")) for n in range(5)] + [_Slot(row(pk, "evt_0"))]
    for slot in slots:  # all waiting before the writer starts: one batch
        writer.queue.put(slot)
    try:
        writer._ensure_thread()
        for slot in slots:
            assert slot.done.wait(10)
    finally:
        writer.close()
    assert writer.batches == [6]
    assert all(slot.error is None for slot in slots)
    assert [s.result is not None for s in slots] == [True] * 5 + [False]
    assert InboundEvent.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_failed_batch_fails_its_requests_and_stores_nothing(stripe_connection):
    writer = GroupCommitWriter()
    bad = row(stripe_connection.pk, "evt_bad")
    bad["connection"] = 10**9  # no such connection: the foreign key refuses the batch
    good = row(stripe_connection.pk, "evt_good")
    try:
        slots = [_Slot(good), _Slot(bad)]
        for slot in slots:
            writer.queue.put(slot)
        writer._ensure_thread()
        for slot in slots:
            assert slot.done.wait(10)
        assert all(slot.error is not None for slot in slots)
        # The writer survives and serves the next request.
        assert writer.submit(row(stripe_connection.pk, "evt_next"))
    finally:
        writer.close()
    assert list(InboundEvent.objects.values_list("external_id", flat=True)) == ["evt_next"]
