"""Customers end to end through the platform's webhooks and flows against the sandbox
(issue 11, "Done when"): a new shopper becomes a Stripe customer, an address edited in
Znode shows on the Stripe customer within seconds and does not come back, and a card
attached in Stripe appears on the customer's admin page."""

import time

import pytest
import requests

from customers.models import CustomerLink, SavedCard
from integrations.models import InboundEvent
from tests.e2e.conftest import stripe_client, wait_for
from tests.e2e.test_refunds_e2e import settled_jobs

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("quiet_sandbox")]

HOME = {"address1": "1 Main St", "city": "Austin", "state": "TX", "postal_code": "78701"}


def new_shopper(platform, sandbox, email: str) -> tuple[dict, CustomerLink]:
    response = requests.post(
        sandbox.system_url("znode").rstrip("/") + "/_test/customers",
        json={"first_name": "Ana", "last_name": "Lima", "email": email, "address": HOME},
        timeout=10,
    )
    response.raise_for_status()
    user = response.json()["User"]
    link = wait_for(
        lambda: CustomerLink.objects.filter(znode_user_id=user["UserId"]).first(),
        message="the new Znode user linked to a Stripe customer",
    )
    wait_for(settled_jobs, message="every job done")
    return user, link


def stripe_line1(sandbox, customer_id: str) -> str:
    customer = stripe_client(sandbox).v1.customers.retrieve(customer_id).to_dict()
    return (customer.get("address") or {}).get("line1") or ""


def test_an_address_edited_in_znode_shows_on_stripe_in_seconds_and_does_not_come_back(
    platform, sandbox
):
    user, link = new_shopper(platform, sandbox, "e2e-move@example.com")
    assert stripe_line1(sandbox, link.stripe_customer_id) == "1 Main St"
    client = platform.znode.client()
    [row] = client.list_addresses(user_id=user["UserId"])
    echoes = InboundEvent.objects.filter(status_reason__contains="echo of our own write").count()

    started = time.monotonic()
    client.update_address(
        user_id=user["UserId"], address_id=row["AddressId"], changes={"Address1": "9 Oak Ave"}
    )
    wait_for(
        lambda: stripe_line1(sandbox, link.stripe_customer_id) == "9 Oak Ave",
        timeout=10,
        message="the new address on the Stripe customer",
    )
    took = time.monotonic() - started
    wait_for(settled_jobs, message="every job done")

    assert took < 10
    # Stripe's customer.updated for our write was recognised as its echo: no job.
    wait_for(
        lambda: (
            InboundEvent.objects.filter(status_reason__contains="echo of our own write").count()
            > echoes
        ),
        message="the echo dropped",
    )
    time.sleep(1.5)
    wait_for(settled_jobs, message="every job done")
    assert stripe_line1(sandbox, link.stripe_customer_id) == "9 Oak Ave"
    [after] = client.list_addresses(user_id=user["UserId"])
    assert after["Address1"] == "9 Oak Ave"


def test_a_card_attached_in_stripe_appears_on_the_customers_admin_page(
    platform, sandbox, admin_client
):
    _, link = new_shopper(platform, sandbox, "e2e-card@example.com")
    stripe = stripe_client(sandbox)

    stripe.v1.payment_methods.attach("pm_card_mastercard", {"customer": link.stripe_customer_id})

    card = wait_for(lambda: SavedCard.objects.filter(link=link).first(), message="card saved")
    assert (card.brand, card.last4) == ("mastercard", "4444")
    page = admin_client.get(f"/admin/customers/customerlink/{link.pk}/change/")
    assert page.status_code == 200 and "4444" in page.content.decode()
