"""Setup checks of order-to-cash: do the status tables name states the store has?"""

from __future__ import annotations

from typing import TYPE_CHECKING

from integrations.connectors.znode.client import ZnodeClient
from integrations.models import LookupTable
from integrations.registry import setup_check

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
    client = ZnodeClient(integration.znode)
    problems = []
    for key, kind in STATUS_TABLES:
        table = LookupTable.objects.filter(key=key).first()
        names = sorted({str(v) for v in (table.entries if table else {}).values() if v})
        problems.extend(f"{key}: {p}" for p in client.check_states(kind, names))
    return problems
