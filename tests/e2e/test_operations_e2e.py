"""Operations end to end (issue 13, Done when): the sandbox's Znode goes down while
orders come in; that is one error group and one alert, not one per job; once Znode is
back, a bulk retry from the group clears it."""

from __future__ import annotations

import pytest
from django.core import mail

from integrations.choices import AlertKind, ErrorGroupState, JobStatus
from integrations.models import Alert, AlertChannel, AlertRule, ErrorGroup, Job
from integrations.services.alerts import alert_rules_install, alerts_check
from integrations.services.error_groups import error_group_retry
from integrations.services.jobs import jobs_resume
from payments.choices import OrderState
from payments.models import Order
from tests.e2e.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("quiet_sandbox")]

ORDERS = 6


def test_a_znode_outage_is_one_group_and_one_alert_and_a_bulk_retry_clears_it(
    platform, sandbox, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    alert_rules_install()
    # The outage is seconds long here, not a minute: the span the rule asks for is 0.
    AlertRule.objects.filter(kind=AlertKind.CONNECTION_FAILING).update(sustained_seconds=0)
    AlertChannel.objects.create(name="ops", kind="email", recipients="ops@example.com")

    # The orders' events arrive while the integration is paused, so their jobs all run
    # once Znode is down (a job that read the order before the outage began would not
    # need it).
    platform.enabled = False
    platform.save()
    numbers = [
        platform.shop.place_order(total=f"{20 + n}.00", card="pm_card_visa", payment_setting_id=7)[
            "OrderNumber"
        ]
        for n in range(ORDERS)
    ]
    wait_for(
        lambda: (
            Job.objects.filter(reference__in=numbers, status=JobStatus.PAUSED).count() == ORDERS
        ),
        message="the orders' jobs waiting",
    )
    sandbox.set_faults("znode", error_rate=1.0)
    platform.enabled = True
    platform.save()
    jobs_resume(integration=platform)
    failing = Job.objects.filter(reference__in=numbers)
    wait_for(
        lambda: failing.filter(status=JobStatus.RETRYING).count() == ORDERS,
        message="every order's job failing and waiting for a retry",
    )

    [group] = ErrorGroup.objects.all()
    assert group.occurrences == ORDERS and group.state == ErrorGroupState.OPEN
    assert set(failing.values_list("error_group", flat=True)) == {group.pk}
    assert alerts_check()["raised"] == 1
    assert alerts_check()["raised"] == 0  # the outage goes on: counted, not sent again
    [alert] = Alert.objects.all()
    assert alert.kind == AlertKind.CONNECTION_FAILING and alert.repeats == 1
    assert alert.subject == f"Connection {platform.znode.name} keeps failing"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ops@example.com"]

    sandbox.set_faults("znode", error_rate=0.0)
    result = error_group_retry(group=group, note="Znode is back")
    assert result.done == ORDERS
    wait_for(
        lambda: (
            Order.objects.filter(order_number__in=numbers, state=OrderState.AUTHORIZED).count()
            == ORDERS
        ),
        timeout=60,
        message="every order adopted after the retry",
    )
    wait_for(
        lambda: ErrorGroup.objects.get().state == ErrorGroupState.RESOLVED,
        message="the group cleared",
    )
    assert Alert.objects.exclude(kind=AlertKind.DIGEST).count() == 1
