"""Status tables against the store's vocabularies (reference znode-api.md §3.1, §4.1)."""

import pytest
from django.core.management import call_command

from integrations.connectors.znode.client import forget_cached
from integrations.models import Integration, LookupTable
from integrations.services.connections import connection_test
from integrations.services.flows import lookups_install_defaults
from payments.checks import status_tables_check
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
