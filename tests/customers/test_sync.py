"""The two-way customer sync through the sandbox's Znode and Stripe (issue 11): a Znode
user becomes one Stripe customer with its profile, found before it is created; edits
flow both ways through read-modify-write (reference znode-api.md §6, §12), both-sided
edits resolve by ownership and are recorded, our own writes never echo back, and
data Stripe cannot take is quarantined with a readable reason until it is fixed."""

from __future__ import annotations

import pytest
import requests

from customers.models import (
    CustomerConflict,
    CustomerLink,
    CustomerSyncLock,
    MatchedBy,
    RejectedCustomer,
    SavedCard,
)
from customers.selectors import stripe_customer_linked
from customers.services import stripe_customer_ensure
from integrations.choices import JobStatus
from integrations.kernel import exceptions as exc
from integrations.models import ApiCall, Flow, InboundEvent, Job, LookupTable
from integrations.registry import get_action
from integrations.services.inbox import inbox_drain
from integrations.services.jobs import job_requeue, job_run
from tests.conftest import post_stripe, post_znode, stripe_event, znode_event
from tests.support.payments import new_ctx, run

pytestmark = pytest.mark.django_db

AUSTIN = {
    "address1": "1 Main St",
    "city": "Austin",
    "state": "TX",
    "postal_code": "78701",
    "country": "US",
}


def sync(synced, user_id: int) -> dict:
    return run(synced.integration, "customers.sync_znode_customer", user_id=user_id)


def writes() -> int:
    return ApiCall.objects.exclude(method="GET").count()


def address_of(customer: dict) -> dict:
    address = customer["address"] or {}
    return {k: address.get(k) for k in ("line1", "city", "state", "postal_code", "country")}


def linked_user(synced, **fields) -> tuple[dict, dict]:
    """A Znode user with an address, synced to its new Stripe customer."""
    user = synced.create_user(address=AUSTIN, **fields)
    sync(synced, user["UserId"])
    [customer] = synced.stripe_customers(user["Email"])
    return user, customer


def znode_address(synced, user_id: int) -> dict:
    [row] = synced.znode().list_addresses(user_id=user_id)
    return row


# --- Znode → Stripe -------------------------------------------------------------------------
def test_a_znode_user_becomes_a_stripe_customer_with_its_whole_profile(synced):
    user = synced.create_user(email="ana@example.com", address=AUSTIN)

    out = sync(synced, user["UserId"])

    assert (out["link_created"], out["stripe_created"], out["conflicts"]) == (True, True, 0)
    [customer] = synced.stripe_customers("ana@example.com")
    assert (customer["name"], customer["phone"]) == ("Ana Lima", "+15550100")
    assert customer["metadata"] == {
        "znode_user_id": str(user["UserId"]),
        "integration": synced.integration.name,
    }
    assert address_of(customer) == {
        "line1": "1 Main St",
        "city": "Austin",
        "state": "TX",
        "postal_code": "78701",
        "country": "US",
    }
    assert customer["shipping"]["name"] == "Ana Lima"
    assert address_of(customer["shipping"]) == address_of(customer)
    link = CustomerLink.objects.get(znode_user_id=user["UserId"])
    assert link.stripe_customer_id == customer["id"] and link.znode_portal_id == 1
    assert link.synced_profile["billing_address"]["city"] == "Austin"
    assert link.znode_fingerprint == link.stripe_fingerprint != ""


def test_a_second_sync_of_an_unchanged_user_writes_nothing(synced):
    user, _ = linked_user(synced, email="same@example.com")
    before = writes()

    out = sync(synced, user["UserId"])

    assert (out["link_created"], out["to_stripe"], out["to_znode"]) == (False, [], [])
    assert writes() == before


def test_a_customer_with_the_same_email_is_matched_not_duplicated_nor_trusted(synced):
    made = synced.stripe(
        "POST", "/v1/customers", email="dup@example.com", name="Support made", phone="+15559999"
    )
    user = synced.create_user(email="dup@example.com")  # no phone of hers, no address
    before = writes()

    out = sync(synced, user["UserId"])

    assert (out["link_created"], out["stripe_created"]) == (True, False)
    [customer] = synced.stripe_customers("dup@example.com")
    assert customer["id"] == made["id"] and out["customer"] == made["id"]
    # Anyone can type an email into a store: until an operator confirms the match,
    # nothing crosses (not the other person's phone into Znode, not our name over
    # theirs), no metadata of ours, and its cards are never offered or charged.
    assert "found by email only" in out["skipped"] and writes() == before
    link = CustomerLink.objects.get()
    assert link.matched_by == MatchedBy.EMAIL and customer["metadata"] == {}
    assert customer["name"] == "Support made"
    stored = synced.znode().get_customer(user_id=user["UserId"], portal_id=1)
    assert stored["PhoneNumber"] == "+15550100" and stored["Addresses"] == []
    for by_email in (True, False):
        assert stripe_customer_ensure(
            ctx=new_ctx(synced.integration),
            znode_user_id=user["UserId"],
            email="dup@example.com",
            by_email=by_email,
        ) == ("", False)
    assert (
        stripe_customer_linked(integration=synced.integration, znode_user_id=user["UserId"]) == ""
    )

    link.matched_by = MatchedBy.CONFIRMED
    link.save()
    out = sync(synced, user["UserId"])

    [customer] = synced.stripe_customers("dup@example.com")
    assert customer["metadata"] == {
        "znode_user_id": str(user["UserId"]),
        "integration": synced.integration.name,
    }
    assert (customer["name"], customer["phone"]) == ("Ana Lima", "+15550100")  # Znode owns them
    assert {c.field for c in CustomerConflict.objects.all()} == {"name", "phone"}
    assert stripe_customer_ensure(
        ctx=new_ctx(synced.integration), znode_user_id=user["UserId"], email="", by_email=False
    ) == (made["id"], False)


def test_a_value_changed_back_is_written_again(synced):
    user, customer = linked_user(synced, email="back@example.com")
    row = znode_address(synced, user["UserId"])
    for city in ("Dallas", "Austin", "Dallas"):
        synced.znode().update_address(
            user_id=user["UserId"], address_id=row["AddressId"], changes={"CityName": city}
        )
        sync(synced, user["UserId"])
        [customer] = synced.stripe_customers("back@example.com")
        assert address_of(customer)["city"] == city  # never an earlier answer replayed

    assert sync(synced, user["UserId"])["to_znode"] == []


def test_a_billing_address_changed_in_stripe_leaves_a_shared_shipping_row_alone(synced, client):
    user, customer = linked_user(synced, email="split@example.com")
    [shared] = synced.znode().list_addresses(user_id=user["UserId"])  # default for both
    synced.stripe(
        "POST",
        f"/v1/customers/{customer['id']}",
        **{"address[city]": "Dallas", "address[line1]": "9 Oak Ave"},
    )

    out = run(synced.integration, "customers.sync_stripe_customer", customer=customer["id"])

    assert out["to_znode"] == ["billing_address"]
    rows = {r["AddressId"]: r for r in synced.znode().list_addresses(user_id=user["UserId"])}
    [new_id] = set(rows) - {shared["AddressId"]}
    assert (rows[new_id]["Address1"], rows[new_id]["CityName"]) == ("9 Oak Ave", "Dallas")
    assert (rows[new_id]["IsDefaultBilling"], rows[new_id]["IsDefaultShipping"]) == (True, False)
    assert (rows[new_id]["FirstName"], rows[new_id]["LastName"]) == ("Ana", "Lima")
    kept = rows[shared["AddressId"]]
    assert (kept["CityName"], kept["IsDefaultBilling"], kept["IsDefaultShipping"]) == (
        "Austin",
        False,
        True,
    )
    [customer] = synced.stripe_customers("split@example.com")
    assert address_of(customer["shipping"])["city"] == "Austin"
    # Znode's events for both rows (the new one, and the old one whose billing flag
    # Znode cleared) are the echoes of our write: no job.
    jobs = Job.objects.count()
    for name, row in (("Created", rows[new_id]), ("Updated", kept)):
        post_znode(
            client,
            synced.integration.znode,
            znode_event(module="Address", name=name, payload=row),
        )
    inbox_drain()
    assert Job.objects.count() == jobs
    again = sync(synced, user["UserId"])
    assert (again["to_stripe"], again["to_znode"]) == ([], [])

    # The billing row is its own now: the next billing change in Stripe is written
    # over it in place (read-modify-write: its other fields kept), no third row.
    synced.stripe(  # Stripe replaces the address object: the Dashboard sends it whole
        "POST",
        f"/v1/customers/{customer['id']}",
        **{"address[city]": "Plano", "address[line1]": "9 Oak Ave"},
    )
    run(synced.integration, "customers.sync_stripe_customer", customer=customer["id"])
    after = {r["AddressId"]: r for r in synced.znode().list_addresses(user_id=user["UserId"])}
    assert set(after) == set(rows)
    moved = after[new_id]
    assert (moved["CityName"], moved["Address1"], moved["FirstName"]) == (
        "Plano",
        "9 Oak Ave",
        "Ana",
    )
    assert {k: v for k, v in moved.items() if k not in ("CityName", "ModifiedDate")} == {
        k: v for k, v in rows[new_id].items() if k not in ("CityName", "ModifiedDate")
    }
    assert after[shared["AddressId"]]["CityName"] == "Austin"


def test_a_customer_of_another_znode_user_is_never_taken_by_email(synced):
    other = synced.stripe(
        "POST", "/v1/customers", email="shared@example.com", **{"metadata[znode_user_id]": "999"}
    )
    user = synced.create_user(email="shared@example.com", address=AUSTIN)

    out = sync(synced, user["UserId"])

    assert out["stripe_created"] is True and out["customer"] != other["id"]
    assert len(synced.stripe_customers("shared@example.com")) == 2


def test_an_address_edited_in_znode_reaches_stripe_and_nulls_nothing(synced):
    user, customer = linked_user(synced, email="move@example.com", company="Lima Ltd")
    row = znode_address(synced, user["UserId"])
    synced.znode().update_address(
        user_id=user["UserId"], address_id=row["AddressId"], changes={"CityName": "Dallas"}
    )

    out = sync(synced, user["UserId"])

    assert set(out["to_stripe"]) == {"billing_address", "shipping_address"}
    [customer] = synced.stripe_customers("move@example.com")
    assert address_of(customer)["city"] == "Dallas" and address_of(customer)["line1"] == "1 Main St"
    # The partial update kept every other column of the row and of the user.
    after = znode_address(synced, user["UserId"])
    assert {k: v for k, v in after.items() if k not in ("CityName", "ModifiedDate")} == {
        k: v for k, v in row.items() if k not in ("CityName", "ModifiedDate")
    }
    assert synced.znode().get_customer(user_id=user["UserId"], portal_id=1)["CompanyName"] == (
        "Lima Ltd"
    )


# --- Stripe → Znode -------------------------------------------------------------------------
def test_a_phone_changed_in_stripe_reaches_znode_through_read_modify_write(synced):
    user, customer = linked_user(synced, email="phone@example.com", company="Lima Ltd")
    synced.stripe("POST", f"/v1/customers/{customer['id']}", phone="+15550199")

    out = run(synced.integration, "customers.sync_stripe_customer", customer=customer["id"])

    assert out["to_znode"] == ["phone"] and out["to_stripe"] == []
    stored = synced.znode().get_customer(user_id=user["UserId"], portal_id=1)
    assert stored["PhoneNumber"] == "+15550199"
    # customeraccount/update replaces the whole row: nothing else was lost (§12).
    assert (stored["CompanyName"], stored["Email"], stored["FirstName"]) == (
        "Lima Ltd",
        "phone@example.com",
        "Ana",
    )


def test_a_stripe_customer_of_no_znode_user_is_left_alone(synced):
    stranger = synced.stripe("POST", "/v1/customers", email="stranger@example.com")
    before = writes()

    out = run(synced.integration, "customers.sync_stripe_customer", customer=stranger["id"])

    assert out["skipped"] == f"Stripe customer {stranger['id']} belongs to no Znode user"
    assert writes() == before and not CustomerLink.objects.exists()


def test_edits_on_both_sides_resolve_by_ownership_and_are_listed(synced):
    user, customer = linked_user(synced, email="both@example.com")
    synced.edit_user(user["UserId"], PhoneNumber="+15550111")
    synced.stripe("POST", f"/v1/customers/{customer['id']}", phone="+15550222", name="Ana S")

    out = sync(synced, user["UserId"])

    # Znode owns the phone: its value goes to Stripe; the name changed in Stripe only.
    assert out["conflicts"] == 1 and set(out["to_stripe"]) == {"phone"}
    assert out["to_znode"] == ["name"]
    [customer] = synced.stripe_customers("both@example.com")
    assert customer["phone"] == "+15550111"
    stored = synced.znode().get_customer(user_id=user["UserId"], portal_id=1)
    assert (stored["FirstName"], stored["LastName"], stored["PhoneNumber"]) == (
        "Ana",
        "S",
        "+15550111",
    )
    conflict = CustomerConflict.objects.get()
    assert (conflict.field, conflict.winner, conflict.rule) == ("phone", "znode", "owner")
    assert (conflict.znode_value, conflict.stripe_value, conflict.base_value) == (
        "+15550111",
        "+15550222",
        "+15550100",
    )


def test_an_operator_can_give_a_field_to_stripe(synced):
    user, customer = linked_user(synced, email="owner@example.com")
    LookupTable.objects.filter(key="customer-field-owners").update(entries={"phone": "stripe"})
    synced.edit_user(user["UserId"], PhoneNumber="+15550111")
    synced.stripe("POST", f"/v1/customers/{customer['id']}", phone="+15550222")

    out = sync(synced, user["UserId"])

    assert out["to_znode"] == ["phone"] and out["to_stripe"] == []
    stored = synced.znode().get_customer(user_id=user["UserId"], portal_id=1)
    assert stored["PhoneNumber"] == "+15550222"
    assert CustomerConflict.objects.get().winner == "stripe"


# --- no loops -------------------------------------------------------------------------------
def test_the_stripe_echo_of_our_own_write_makes_no_job(synced, client):
    user, _ = linked_user(synced, email="echo@example.com")
    synced.edit_user(user["UserId"], PhoneNumber="+15550123")
    sync(synced, user["UserId"])
    [customer] = synced.stripe_customers("echo@example.com")  # as Stripe's webhook shows it
    jobs = Job.objects.count()

    response = post_stripe(
        client, synced.integration.stripe, stripe_event("customer.updated", obj=customer)
    )
    inbox_drain()

    assert response.status_code == 200
    event = InboundEvent.objects.get(event_type="customer.updated")
    assert "echo of our own write" in event.status_reason
    assert Job.objects.count() == jobs


def test_the_znode_echo_of_our_own_write_makes_no_job_and_a_real_edit_does(synced, client):
    user, customer = linked_user(synced, email="zecho@example.com")
    synced.stripe("POST", f"/v1/customers/{customer['id']}", phone="+15550177")
    run(synced.integration, "customers.sync_stripe_customer", customer=customer["id"])
    stored = synced.znode().get_customer(user_id=user["UserId"], portal_id=1)
    stored.pop("Addresses", None)
    jobs = Job.objects.count()

    post_znode(
        client, synced.integration.znode, znode_event(module="User", name="Updated", payload=stored)
    )
    inbox_drain()
    assert Job.objects.count() == jobs  # the echo of our write

    post_znode(
        client,
        synced.integration.znode,
        znode_event(module="User", name="Updated", payload={**stored, "PhoneNumber": "+15550188"}),
    )
    inbox_drain()
    job = Job.objects.get(flow__key="user-updated")
    assert job.context["customer"]["user_id"] == user["UserId"]


# --- bad data -------------------------------------------------------------------------------
def sync_job(synced, user_id: int) -> Job:
    job = Job.objects.create(
        flow=Flow.objects.get(key="user-updated"),
        integration=synced.integration,
        context={"customer": {"user_id": user_id, "portal_id": 1}},
        max_attempts=5,
    )
    job_run(job_id=job.pk)
    job.refresh_from_db()
    return job


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (
            {"email": "ana-at-example.com"},
            "email 'ana-at-example.com' is not a valid email address",
        ),
        (
            {"email": "atlantis@example.com", "address": {**AUSTIN, "country": "Atlantis"}},
            "billing address country 'ATLANTIS' is not an ISO 3166-1 alpha-2 code",
        ),
        (
            {"email": "long@example.com", "address": {**AUSTIN, "address1": "9" * 5001}},
            "billing address line1 is 5001 characters",
        ),
    ],
)
def test_data_stripe_cannot_take_is_quarantined_at_once_and_nothing_is_written(
    synced, fields, reason
):
    user = synced.create_user(**{"address": AUSTIN, **fields})
    before = writes()

    job = sync_job(synced, user["UserId"])

    assert job.status == JobStatus.QUARANTINED and job.attempts == 1
    assert reason in job.last_error and "Correct it in Znode, then retry" in job.last_error
    assert writes() == before and not CustomerLink.objects.exists()


def test_a_quarantined_user_fixed_in_znode_syncs_on_retry(synced):
    user = synced.create_user(email="fix-at-example.com", address=AUSTIN)
    job = sync_job(synced, user["UserId"])
    assert job.status == JobStatus.QUARANTINED

    synced.edit_user(user["UserId"], Email="fix@example.com")
    job_requeue(job=job, note="email corrected in Znode")
    job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert CustomerLink.objects.get().email == "fix@example.com"
    assert len(synced.stripe_customers("fix@example.com")) == 1


def test_the_reason_names_every_problem_at_once(synced):
    user = synced.create_user(email="x-at-y", address={**AUSTIN, "country": "Atlantis"})
    with pytest.raises(exc.DataError) as raised:
        sync(synced, user["UserId"])
    assert "email 'x-at-y'" in str(raised.value) and "'ATLANTIS'" in str(raised.value)


# --- saved cards ----------------------------------------------------------------------------
def test_a_card_attached_in_stripe_is_kept_on_the_link_and_shown_in_the_admin(synced, admin_client):
    _, customer = linked_user(synced, email="cards@example.com")
    card = synced.stripe("POST", "/v1/payment_methods", type="card", **{"card[token]": "tok_visa"})
    synced.stripe("POST", f"/v1/payment_methods/{card['id']}/attach", customer=customer["id"])
    synced.stripe(
        "POST",
        f"/v1/customers/{customer['id']}",
        **{"invoice_settings[default_payment_method]": card["id"]},
    )

    out = run(synced.integration, "customers.sync_cards", customer=customer["id"])

    assert out == {"cards": 1, "default": card["id"]}
    saved = SavedCard.objects.get()
    assert (saved.brand, saved.last4, saved.is_default) == ("visa", "4242", True)
    assert saved.exp_month and saved.exp_year
    link = CustomerLink.objects.get()
    page = admin_client.get(f"/admin/customers/customerlink/{link.pk}/change/")
    assert page.status_code == 200 and "4242" in page.content.decode()

    synced.stripe("POST", f"/v1/payment_methods/{card['id']}/detach")
    run(synced.integration, "customers.sync_cards", customer=customer["id"])
    assert not SavedCard.objects.exists()


def test_cards_of_a_customer_not_linked_are_left_alone(synced):
    stranger = synced.stripe("POST", "/v1/customers", email="nolink@example.com")
    out = run(synced.integration, "customers.sync_cards", customer=stranger["id"])
    assert out == {"cards": 0, "skipped": f"Stripe customer {stranger['id']} is not linked"}


# --- one job at a time, and a way out when the customer is gone ------------------------------
def test_two_jobs_never_sync_one_customer_at_once(synced, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    import customers.sync

    user, customer = linked_user(synced, email="busy@example.com")
    synced.stripe("POST", f"/v1/customers/{customer['id']}", phone="+15550166")
    other = new_ctx(synced.integration).job
    Job.objects.filter(pk=other.pk).update(
        status=JobStatus.RUNNING, lease_expires_at=timezone.now() + timedelta(minutes=1)
    )
    CustomerSyncLock.objects.filter(znode_user_id=user["UserId"]).update(job=other.pk)
    monkeypatch.setattr(customers.sync, "SYNC_WAIT", 0.3)
    before = writes()

    with pytest.raises(exc.ConflictRetry, match="being synced by job"):
        run(synced.integration, "customers.sync_stripe_customer", customer=customer["id"])
    assert writes() == before

    Job.objects.filter(pk=other.pk).update(status=JobStatus.SUCCEEDED)
    out = run(synced.integration, "customers.sync_stripe_customer", customer=customer["id"])
    assert out["to_znode"] == ["phone"] and CustomerSyncLock.objects.get().job is None


def test_a_customer_deleted_in_stripe_is_unlinked_by_an_operator_and_made_anew(
    synced, admin_client
):
    user, customer = linked_user(synced, email="gone@example.com")
    synced.stripe("DELETE", f"/v1/customers/{customer['id']}")
    with pytest.raises(exc.DataError, match="was deleted in Stripe; unlink it in the admin"):
        sync(synced, user["UserId"])
    link = CustomerLink.objects.get()

    admin_client.post(
        "/admin/customers/customerlink/", {"action": "unlink", "_selected_action": [link.pk]}
    )
    out = sync(synced, user["UserId"])

    assert (out["link_created"], out["stripe_created"]) == (True, True)
    assert out["customer"] != customer["id"]
    assert CustomerLink.objects.get().stripe_customer_id == out["customer"]


def test_a_state_name_and_a_lower_case_postal_code_reach_stripe_normalized_once(synced):
    user = synced.create_user(
        email="norm@example.com",
        address={**AUSTIN, "state": "Texas", "postal_code": "78701 ab", "country": "USA"},
    )

    sync(synced, user["UserId"])

    [customer] = synced.stripe_customers("norm@example.com")
    assert {k: address_of(customer)[k] for k in ("state", "postal_code", "country")} == {
        "state": "TX",
        "postal_code": "78701 AB",
        "country": "US",
    }
    before = writes()
    again = sync(synced, user["UserId"])
    assert (again["to_stripe"], again["to_znode"], writes()) == ([], [], before)


def test_an_unlinked_customer_is_never_found_for_the_user_again(synced, admin_client):
    user, customer = linked_user(synced, email="wrong@example.com")  # our metadata on it
    link = CustomerLink.objects.get()

    admin_client.post(
        "/admin/customers/customerlink/", {"action": "unlink", "_selected_action": [link.pk]}
    )
    out = sync(synced, user["UserId"])

    assert out["stripe_created"] is True and out["customer"] != customer["id"]
    assert RejectedCustomer.objects.get().stripe_customer_id == customer["id"]


# --- review of issue 11: duplicates, other stores, cards saved before, shared rows ----------
def test_two_znode_users_with_one_email_never_share_a_customer(synced):
    """A guest and an account may carry one email: the customer the first user's link
    holds is not the second user's (a second link to it would break the link's
    uniqueness and stop the sync for good)."""
    made = synced.stripe("POST", "/v1/customers", email="twin@example.com")
    first = synced.create_user(email="twin@example.com")
    second = synced.create_user(email="twin@example.com", first_name="Bea", portal_id=2)

    assert sync(synced, first["UserId"])["customer"] == made["id"]
    out = sync(synced, second["UserId"])

    assert out["stripe_created"] is True and out["customer"] != made["id"]
    links = dict(CustomerLink.objects.values_list("znode_user_id", "stripe_customer_id"))
    assert links == {first["UserId"]: made["id"], second["UserId"]: out["customer"]}
    assert sync(synced, second["UserId"])["link_created"] is False  # and stays so


def test_an_email_in_another_case_is_matched_not_duplicated(synced):
    """Stripe's list filters email case-sensitively: the lower-case form is asked too."""
    made = synced.stripe("POST", "/v1/customers", email="case@example.com")
    user = synced.create_user(email="Case@Example.com")

    out = sync(synced, user["UserId"])

    assert (out["customer"], out["stripe_created"]) == (made["id"], False)
    assert CustomerLink.objects.get().matched_by == MatchedBy.EMAIL
    assert len(synced.stripe_customers("case@example.com")) == 1
    assert synced.stripe_customers("Case@Example.com") == []


def test_a_customer_of_another_store_on_the_same_stripe_account_is_never_taken(synced):
    user = synced.create_user(email="store@example.com")
    theirs = synced.stripe(
        "POST",
        "/v1/customers",
        email="store@example.com",
        **{"metadata[znode_user_id]": str(user["UserId"]), "metadata[integration]": "other"},
    )

    out = sync(synced, user["UserId"])

    assert out["stripe_created"] is True and out["customer"] != theirs["id"]
    ours = synced.stripe("GET", f"/v1/customers/{out['customer']}")
    assert ours["metadata"] == {
        "znode_user_id": str(user["UserId"]),
        "integration": synced.integration.name,
    }


def test_a_customer_naming_no_store_is_not_taken_where_two_stores_share_the_account(synced):
    from integrations.models import Integration

    Integration.objects.create(
        name="second-store", znode=synced.integration.znode, stripe=synced.integration.stripe
    )
    user = synced.create_user(email="older@example.com")
    older = synced.stripe(
        "POST",
        "/v1/customers",
        email="older@example.com",
        **{"metadata[znode_user_id]": str(user["UserId"])},
    )

    out = sync(synced, user["UserId"])

    assert out["customer"] != older["id"] and out["stripe_created"] is True


def test_cards_saved_before_the_link_show_on_the_link_once_linked(synced, admin_client):
    user = synced.create_user(email="saved@example.com")
    customer = synced.stripe(
        "POST",
        "/v1/customers",
        email="saved@example.com",
        **{
            "metadata[znode_user_id]": str(user["UserId"]),
            "metadata[integration]": synced.integration.name,
        },
    )
    card = synced.stripe("POST", "/v1/payment_methods", type="card", **{"card[token]": "tok_visa"})
    synced.stripe("POST", f"/v1/payment_methods/{card['id']}/attach", customer=customer["id"])

    out = sync(synced, user["UserId"])

    assert out["customer"] == customer["id"]
    link = CustomerLink.objects.get()
    assert link.cards_synced_at is not None
    assert list(SavedCard.objects.values_list("link", "last4")) == [(link.pk, "4242")]
    page = admin_client.get(f"/admin/customers/customerlink/{link.pk}/change/")
    assert "4242" in page.content.decode()
    cards_read = ApiCall.objects.filter(operation="customer.payment_methods").count
    assert cards_read() == 1
    sync(synced, user["UserId"])
    assert cards_read() == 1  # once: payment_method events keep them from then on


def test_both_addresses_moved_to_one_place_in_stripe_are_written_once_on_the_shared_row(
    synced, client
):
    user, customer = linked_user(synced, email="oneplace@example.com")
    [shared] = synced.znode().list_addresses(user_id=user["UserId"])
    synced.stripe(
        "POST",
        f"/v1/customers/{customer['id']}",
        **{
            "address[line1]": "9 Oak Ave",
            "address[city]": "Dallas",
            "address[state]": "TX",
            "address[postal_code]": "75201",
            "address[country]": "US",
            "shipping[name]": "Ana Lima",
            "shipping[address][line1]": "9 Oak Ave",
            "shipping[address][city]": "Dallas",
            "shipping[address][state]": "TX",
            "shipping[address][postal_code]": "75201",
            "shipping[address][country]": "US",
        },
    )

    out = run(synced.integration, "customers.sync_stripe_customer", customer=customer["id"])

    assert set(out["to_znode"]) == {"billing_address", "shipping_address"}
    [row] = synced.znode().list_addresses(user_id=user["UserId"])  # no second row
    assert row["AddressId"] == shared["AddressId"]
    assert (row["Address1"], row["CityName"], row["PostalCode"]) == ("9 Oak Ave", "Dallas", "75201")
    assert (row["IsDefaultBilling"], row["IsDefaultShipping"]) == (True, True)
    jobs = Job.objects.count()
    post_znode(
        client, synced.integration.znode, znode_event(module="Address", name="Updated", payload=row)
    )
    inbox_drain()
    assert Job.objects.count() == jobs  # our echo


def test_a_shared_row_whose_two_addresses_moved_apart_echoes_no_job(synced, client):
    """Billing updates the shared row, shipping becomes a row of its own (Znode clears
    the shared row's shipping flag): each row's event reports the state announced for
    it after both writes, so neither makes a job."""
    user, customer = linked_user(synced, email="apart@example.com")
    [shared] = synced.znode().list_addresses(user_id=user["UserId"])
    synced.stripe(
        "POST",
        f"/v1/customers/{customer['id']}",
        **{
            "address[city]": "Dallas",
            "shipping[name]": "Ana Lima",
            "shipping[address][line1]": "5 Elm St",
            "shipping[address][city]": "Houston",
            "shipping[address][state]": "TX",
            "shipping[address][postal_code]": "77002",
            "shipping[address][country]": "US",
        },
    )

    run(synced.integration, "customers.sync_stripe_customer", customer=customer["id"])

    rows = {r["AddressId"]: r for r in synced.znode().list_addresses(user_id=user["UserId"])}
    assert len(rows) == 2
    kept = rows[shared["AddressId"]]
    assert (kept["CityName"], kept["IsDefaultBilling"], kept["IsDefaultShipping"]) == (
        "Dallas",
        True,
        False,
    )
    jobs = Job.objects.count()
    for name, row in (("Updated", kept), *(("Created", r) for r in rows.values() if r is not kept)):
        post_znode(
            client, synced.integration.znode, znode_event(module="Address", name=name, payload=row)
        )
    inbox_drain()
    assert Job.objects.count() == jobs


def test_the_newest_rule_sees_a_stripe_change_whose_job_has_not_run_yet(synced, client):
    """A sync started from Znode, before the job of a later Stripe edit ran: the
    routed event's time counts, so the later Stripe edit wins and the conflict names
    Stripe."""
    import datetime as dt

    from django.utils import timezone

    user, customer = linked_user(synced, email="newest@example.com")
    LookupTable.objects.filter(key="customer-field-owners").update(entries={"phone": "newest"})
    synced.edit_user(user["UserId"], PhoneNumber="+15550111")  # Znode first ...
    edited = synced.stripe("POST", f"/v1/customers/{customer['id']}", phone="+15550222")
    later = int((timezone.now() + dt.timedelta(minutes=5)).timestamp())  # ... Stripe later
    post_stripe(
        client,
        synced.integration.stripe,
        {**stripe_event("customer.updated", obj=edited), "created": later},
    )
    inbox_drain()  # routed: its job waits

    out = sync(synced, user["UserId"])

    assert out["to_znode"] == ["phone"]
    conflict = CustomerConflict.objects.get(field="phone")
    assert (conflict.winner, conflict.rule) == ("stripe", "newest")
    stored = synced.znode().get_customer(user_id=user["UserId"], portal_id=1)
    assert stored["PhoneNumber"] == "+15550222"


def test_a_customer_without_our_integration_is_given_it_once(synced):
    """A customer made before our metadata named the integration: the next sync
    writes it once, and then no more."""
    user = synced.create_user(email="older-meta@example.com")
    older = synced.stripe(
        "POST",
        "/v1/customers",
        email="older-meta@example.com",
        **{"metadata[znode_user_id]": str(user["UserId"])},
    )

    assert sync(synced, user["UserId"])["customer"] == older["id"]
    assert synced.stripe("GET", f"/v1/customers/{older['id']}")["metadata"] == {
        "znode_user_id": str(user["UserId"]),
        "integration": synced.integration.name,
    }
    updates = ApiCall.objects.filter(operation="customer.update").count
    before = updates()
    sync(synced, user["UserId"])
    assert updates() == before


def test_a_link_to_another_stores_customer_is_refused_until_unlinked(synced):
    """A link an earlier release made across two stores: the sync refuses it with a
    reason naming what to do (and never writes the other store's customer)."""
    user = synced.create_user(email="crossed@example.com")
    theirs = synced.stripe(
        "POST",
        "/v1/customers",
        email="crossed@example.com",
        **{"metadata[znode_user_id]": str(user["UserId"]), "metadata[integration]": "other"},
    )
    CustomerLink.objects.create(
        integration=synced.integration,
        znode_user_id=user["UserId"],
        stripe_customer_id=theirs["id"],
        matched_by=MatchedBy.METADATA,
    )
    before = writes()

    with pytest.raises(exc.DataError, match=r"integration other's .* unlink it"):
        sync(synced, user["UserId"])

    assert writes() == before


def test_a_stripe_change_of_another_stores_customer_is_left_alone(synced):
    theirs = synced.stripe(
        "POST",
        "/v1/customers",
        email="theirs@example.com",
        **{"metadata[znode_user_id]": "42", "metadata[integration]": "other"},
    )
    before = ApiCall.objects.count()

    out = get_action("customers.sync_stripe_customer").call(
        new_ctx(synced.integration),
        {"customer": theirs["id"], "znode_user_id": "42", "integration": "other"},
    )

    assert "integration other's" in out["skipped"] and ApiCall.objects.count() == before


def test_a_create_an_earlier_release_made_under_the_key_is_found_on_retry(synced):
    """The same key with other parameters (an earlier release's create, racing or
    retried across a deploy) is retried, not quarantined: the retry finds it."""
    from customers.services import customer_create_key

    user = synced.create_user(email="deploy@example.com")
    key = customer_create_key(new_ctx(synced.integration), znode_user_id=user["UserId"])
    response = requests.post(
        synced.stripe_base + "/v1/customers",
        data={"email": "deploy@example.com", "metadata[znode_user_id]": str(user["UserId"])},
        headers={"Authorization": "Bearer sk_test_customers", "Idempotency-Key": key},
        timeout=10,
    )
    made = response.json()
    # Stripe's search is not read-after-write: the first try does not see it yet.
    hidden = {"email": "", "metadata[znode_user_id]": ""}
    synced.stripe("POST", f"/v1/customers/{made['id']}", **hidden)

    with pytest.raises(exc.ConflictRetry, match="was being made with other details"):
        sync(synced, user["UserId"])

    synced.stripe(
        "POST",
        f"/v1/customers/{made['id']}",
        **{"email": "deploy@example.com", "metadata[znode_user_id]": str(user["UserId"])},
    )
    out = sync(synced, user["UserId"])
    assert (out["customer"], out["stripe_created"]) == (made["id"], False)
    assert len(synced.stripe_customers("deploy@example.com")) == 1


def test_a_confirmed_email_match_shows_the_cards_saved_before(synced, admin_client):
    made = synced.stripe("POST", "/v1/customers", email="confirm@example.com")
    card = synced.stripe("POST", "/v1/payment_methods", type="card", **{"card[token]": "tok_visa"})
    synced.stripe("POST", f"/v1/payment_methods/{card['id']}/attach", customer=made["id"])
    user = synced.create_user(email="confirm@example.com")
    sync(synced, user["UserId"])
    link = CustomerLink.objects.get()
    assert link.matched_by == MatchedBy.EMAIL and not SavedCard.objects.exists()

    admin_client.post(
        "/admin/customers/customerlink/",
        {"action": "confirm_match", "_selected_action": [link.pk]},
    )
    job = Job.objects.get(reference=f"user:{user['UserId']}", context__filed_by="confirmed")
    job_run(job_id=job.pk)

    assert list(SavedCard.objects.values_list("link", "last4")) == [(link.pk, "4242")]
