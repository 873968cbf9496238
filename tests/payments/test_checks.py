"""Status tables against the store's vocabularies (reference znode-api.md §3.1, §4.1)."""

import pytest
from django.core.management import call_command

from integrations.connectors.znode.client import forget_cached
from integrations.models import Integration, LookupTable
from integrations.services.connections import connection_test
from integrations.services.flows import lookups_install_defaults
from payments.checks import checkout_page_check, status_tables_check
from tests.support.shop import store_connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def wired(sandbox, stripe_connection):
    forget_cached()
    lookups_install_defaults()
    yield Integration.objects.create(
        name="stock", znode=store_connection(sandbox), stripe=stripe_connection
    )
    forget_cached()


def test_the_shipped_tables_fit_a_stock_store(wired):
    assert status_tables_check(integration=wired) == []
    result = connection_test(connection=wired.znode)
    assert result.ok, result.message


def test_unusable_and_missing_states_are_named(wired, capsys):
    LookupTable.objects.filter(key="znode-order-states").update(
        entries={"paid": "APPROVED", "authorized": "", "payment_failed": "PAYMENT FAILED"}
    )
    LookupTable.objects.filter(key="znode-payment-states").update(
        entries={"paid": "Captured", "authorized": "Authorized", "payment_failed": "Paid?"}
    )
    problems = status_tables_check(integration=wired)
    assert len(problems) == 3
    assert problems[0].startswith("znode-order-states: Znode state 'APPROVED' is not an order")
    assert problems[1].startswith("znode-order-states: Znode has no order state named 'PAYMENT")
    assert problems[2].startswith("znode-payment-states: Znode has no payment state named 'Paid?'")

    result = connection_test(connection=wired.znode)
    assert not result.ok
    assert "stock: znode-order-states: Znode state 'APPROVED' is not an order state" in (
        result.message
    )

    call_command("install_flows")
    err = capsys.readouterr().err
    assert err.count("WARNING stock: ") == 3
    assert "'APPROVED' is not an order state" in err


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"collection_modes": {"10": "customer"}}, True),
        (
            {"collection_modes": {"10": "customer"}, "checkout_success_url": "https://s.io/ok"},
            False,
        ),
        ({"collection_modes": {"10": "customer"}, "customer_payment_page": "storefront"}, False),
        ({"collection_modes": {"11": "saved_method"}, "saved_method_fallback": "customer"}, True),
        ({"collection_modes": {"11": "saved_method"}}, False),
        ({"collection_modes": {"7": "adopt"}}, False),
    ],
)
def test_a_hosted_payment_page_needs_a_success_url(wired, settings, problem):
    """Customer-mode orders (directly, or as the saved-method fallback) get Stripe's
    hosted page, which cannot be created without a success URL: said at setup, not at
    the first order."""
    wired.settings = settings
    wired.save(update_fields=["settings"])
    problems = checkout_page_check(integration=wired)
    assert bool(problems) is problem
    if problem:
        assert problems[0].startswith("checkout_success_url: customer-mode orders get a Stripe")
        assert "checkout_success_url" in connection_test(connection=wired.znode).message
