"""django-q2 entry points of reconciliation. Thin: each calls one service."""

import logging

from integrations.kernel.exceptions import ConnectorConfigurationError, IntegrationError
from integrations.models import Flow, Integration
from integrations.services.jobs import retry_waker
from reconciliation.drift import DRIFT_FLOW, drift_check

DRIFT_DAYS = 7
logger = logging.getLogger("reconciliation.tasks")


def check_drift() -> dict[str, int]:
    """The daily drift check of every enabled integration with all three systems."""
    retry_waker.ensure()
    if not Flow.objects.filter(key=DRIFT_FLOW).exists():  # no integration can file
        raise ConnectorConfigurationError(
            f"flow {DRIFT_FLOW} is not installed: run manage.py install_flows"
        )
    filed = 0
    for integration in (
        Integration.objects.filter(enabled=True)
        .select_related("znode", "stripe", "erp")
        .order_by("name")
    ):
        if not (integration.znode and integration.stripe and integration.erp):
            continue
        try:  # one integration's outage or set-up never stops the others' check
            filed += drift_check(integration=integration, days=DRIFT_DAYS).filed
        except (IntegrationError, ConnectorConfigurationError):
            logger.exception("reconciliation.drift.failed integration=%s", integration.pk)
    return {"filed": filed}
