"""The ERP client against the sandbox ERP over real HTTP."""

import pytest

from integrations.connectors.erp.client import ErpClient, erp_client
from integrations.kernel import exceptions as exc
from integrations.models import ApiCall
from integrations.services.connections import connection_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def erp(sandbox):
    connection = connection_create(
        name="erp-sandbox",
        kind="erp",
        base_url=sandbox.system_url("erp"),
        credentials={"token": "sandbox-erp-token"},
        rate_limit_per_second=100,
    )
    return erp_client(connection)


def entry(reference="sale:ch_1", amount="19.99"):
    return {
        "external_reference": reference,
        "date": "2026-11-30",
        "currency": "USD",
        "memo": "Order ORD-1",
        "lines": [
            {"account": "1150", "debit": amount, "credit": "0", "description": "Stripe clearing"},
            {"account": "4000", "debit": "0", "credit": amount, "description": "Sales"},
        ],
    }


def test_post_find_and_repeat_is_idempotent(erp):
    first = erp.journal_entry_post(entry=entry())
    again = erp.journal_entry_post(entry=entry())
    assert first["id"] == again["id"]
    assert erp.journal_entry_find("sale:ch_1")["id"] == first["id"]
    assert erp.journal_entry_find("sale:ch_404") is None
    balance = erp.trial_balance()
    assert balance["balanced"] is True and balance["total_debit"] == "19.99"
    keys = list(
        ApiCall.objects.filter(operation="erp.journal_entry.post").values_list(
            "idempotency_key", flat=True
        )
    )
    assert keys == ["sale:ch_1", "sale:ch_1"]


def test_same_reference_other_content_is_a_business_error(erp):
    erp.journal_entry_post(entry=entry())
    with pytest.raises(exc.BusinessRuleError, match="different content"):
        erp.journal_entry_post(entry=entry(amount="20.00"))


def test_unbalanced_entry_is_refused_before_any_call(erp):
    bad = entry()
    bad["lines"][0]["debit"] = "19.98"
    with pytest.raises(exc.DataError, match="does not balance"):
        erp.journal_entry_post(entry=bad)
    assert ApiCall.objects.count() == 0


def test_lost_response_then_retry_does_not_double_post(erp, sandbox):
    sandbox.set_faults("erp", error_after_write_rate=1.0)
    with pytest.raises(exc.ConnectorUnavailable):
        erp.journal_entry_post(entry=entry())
    sandbox.set_faults("erp", error_after_write_rate=0.0)
    erp.journal_entry_post(entry=entry())
    assert erp.trial_balance()["total_debit"] == "19.99"  # posted once


def test_credit_memo_round_trip(erp):
    memo = {
        "external_reference": "refund:re_1",
        "customer_reference": "znode-user-7",
        "date": "2026-11-30",
        "currency": "USD",
        "amount": "5.00",
        "memo": "Return RMA-1",
    }
    created = erp.credit_memo_post(memo=memo)
    assert erp.credit_memo_find("refund:re_1")["id"] == created["id"]


def test_bad_token_is_unauthorized(sandbox):
    connection = connection_create(
        name="erp-bad", kind="erp", base_url=sandbox.system_url("erp"), credentials={"token": "x"}
    )
    with pytest.raises(exc.Unauthorized):
        ErpClient(connection).trial_balance()


class RenamedPathsClient(ErpClient):
    paths = {**ErpClient.paths, "trial_balance": "/api/trial-balance"}


def test_subclass_is_selected_from_settings(sandbox):
    connection = connection_create(
        name="erp-custom",
        kind="erp",
        base_url=sandbox.system_url("erp"),
        credentials={"token": "sandbox-erp-token"},
        settings={"client_class": f"{__name__}.RenamedPathsClient"},
    )
    assert isinstance(erp_client(connection), RenamedPathsClient)
