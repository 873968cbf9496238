"""django-q2 entry points of reconciliation. Thin: each calls one service."""

from integrations.models import Integration
from integrations.services.jobs import retry_waker
from reconciliation.drift import drift_check

DRIFT_DAYS = 7


def check_drift() -> dict[str, int]:
    """The daily drift check of every enabled integration with all three systems."""
    retry_waker.ensure()
    filed = 0
    for integration in Integration.objects.filter(enabled=True).select_related(
        "znode", "stripe", "erp"
    ):
        if integration.znode and integration.stripe and integration.erp:
            filed += drift_check(integration=integration, days=DRIFT_DAYS).filed
    return {"filed": filed}
