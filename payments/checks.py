"""Setup checks of order-to-cash: do the status tables name states the store has, and
can the configured collection modes work?"""

from __future__ import annotations

from typing import TYPE_CHECKING

from integrations.models import LookupTable
from integrations.registry import setup_check
from integrations.settings_schema import integration_setting
from payments.choices import CollectionMode

if TYPE_CHECKING:
    from integrations.models import Integration

# (status table, Znode vocabulary its values name)
STATUS_TABLES = (("znode-order-states", "order"), ("znode-payment-states", "payment"))


@setup_check
def status_tables_check(*, integration: Integration) -> list[str]:
    """Every state a status table maps to must exist in the store and, for order
    states, be one the order-state write accepts (IsOrderState, reference §3.1/§4.1):
    anything else is refused at the first payment instead of now."""
    if integration.znode is None:
        return []
    client = integration.znode.client()
    problems = []
    for key, kind in STATUS_TABLES:
        table = LookupTable.objects.filter(key=key).first()
        names = sorted({str(v) for v in (table.entries if table else {}).values() if v})
        problems.extend(f"{key}: {p}" for p in client.check_states(kind, names))
    return problems


def customer_pays_on_hosted_page(integration: Integration) -> bool:
    """Some orders are paid by the customer on Stripe's hosted page (Checkout)."""
    modes = set((integration_setting(integration, "collection_modes") or {}).values())
    fallback = integration_setting(integration, "saved_method_fallback")
    if CollectionMode.SAVED_METHOD in modes and fallback == CollectionMode.CUSTOMER_COMPLETES:
        modes.add(CollectionMode.CUSTOMER_COMPLETES)
    return (
        CollectionMode.CUSTOMER_COMPLETES in modes
        and integration_setting(integration, "customer_payment_page") == "checkout"
    )


@setup_check
def checkout_page_check(*, integration: Integration) -> list[str]:
    """Stripe's hosted page needs somewhere to send the customer after paying."""
    if customer_pays_on_hosted_page(integration) and not integration_setting(
        integration, "checkout_success_url"
    ):
        return [
            "checkout_success_url: customer-mode orders get a Stripe-hosted payment page, "
            "which needs the URL the customer returns to after paying "
            "(manage.py integration update NAME --setting checkout_success_url=https://...)"
        ]
    return []
