"""The admin in a real browser (issue 13, Deliver 7): Playwright drives Debian's
Chromium (``/usr/bin/chromium``, or ``CHROMIUM_PATH``; a test tool cannot download a
browser offline) against the live server wired to the sandbox. Each test keeps its
screenshots under ``BROWSER_ARTIFACTS`` (default ``var/test-artifacts/browser``)."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from integrations.choices import ErrorGroupState, JobStatus
from integrations.kernel import stats
from integrations.models import ErrorGroup, Flow, Job
from integrations.roles import FINANCE, OPERATORS
from integrations.services.jobs import jobs_resume
from payments.choices import OrderState
from payments.models import Order
from tests.e2e.conftest import wait_for
from tests.support.browser import ARTIFACTS, BROWSER_MARKS, logged_in, user

pytest.importorskip("playwright.sync_api")

pytestmark = BROWSER_MARKS


def test_the_dashboard_moves_as_orders_flow(platform, browser, django_user_model, shot):
    user(django_user_model, "root", superuser=True)
    page = logged_in(browser, platform.url, "root")
    jobs_done = page.get_by_test_id("jobs-done")
    jobs_done.wait_for()
    before = int(jobs_done.inner_text().replace(",", ""))
    shot(page, "dashboard-before")

    number = platform.shop.place_order(total="33.00", card="pm_card_visa", payment_setting_id=7)[
        "OrderNumber"
    ]
    wait_for(
        lambda: Order.objects.filter(order_number=number, state=OrderState.AUTHORIZED).exists(),
        message="the order adopted",
    )
    # The live server counts in this process; the tests write the counts when asked.
    # The page must move by itself (htmx), without a reload.
    moved = False
    for _ in range(40):
        stats.flush()
        if int(jobs_done.inner_text().replace(",", "")) > before:
            moved = True
            break
        page.wait_for_timeout(500)
    assert moved, "the dashboard did not move"
    assert int(page.get_by_test_id("events-in").inner_text().replace(",", "")) >= 1
    shot(page, "dashboard-after")


def test_a_quarantined_job_is_found_through_its_group_and_bulk_retried(
    platform, sandbox, browser, django_user_model, shot
):
    operator = user(django_user_model, "operator", role=OPERATORS)
    Flow.objects.filter(key="order-created-collect-payment").update(max_attempts=1)
    # The order's event arrives while the integration is paused; its job runs when
    # Znode is down, and with one attempt allowed it is quarantined at once.
    platform.enabled = False
    platform.save()
    number = platform.shop.place_order(total="44.00", card="pm_card_visa", payment_setting_id=7)[
        "OrderNumber"
    ]
    wait_for(
        lambda: Job.objects.filter(reference=number, status=JobStatus.PAUSED).exists(),
        message="the order's job waiting",
    )
    sandbox.set_faults("znode", error_rate=1.0)
    platform.enabled = True
    platform.save()
    jobs_resume(integration=platform)
    wait_for(
        lambda: Job.objects.filter(reference=number, status=JobStatus.QUARANTINED).exists(),
        message="the order's job quarantined",
    )
    sandbox.set_faults("znode", error_rate=0.0)
    group = ErrorGroup.objects.get(jobs__reference=number)

    page = logged_in(browser, platform.url, operator.username)
    page.locator("#content").get_by_role("link", name="Error groups", exact=True).click()
    page.wait_for_selector("#result_list")
    shot(page, "error-groups")
    page.click(f"#result_list a[href*='/errorgroup/{group.pk}/change/']")
    page.wait_for_selector("text=Orders affected")
    assert number in page.content()
    shot(page, "error-group")
    page.go_back()
    page.check(f"input[name=_selected_action][value='{group.pk}']")
    page.select_option("select[name=action]", "retry_groups")
    page.locator("button[name=index]:visible").first.click()
    message = page.get_by_text(re.compile(r"group \d+: 1 job\(s\) queued for retry", re.I))
    message.wait_for()
    shot(page, "bulk-retried")

    wait_for(
        lambda: Job.objects.get(reference=number).status == JobStatus.SUCCEEDED,
        message="the retried job succeeded",
    )
    page.goto(f"{platform.url}/admin/integrations/job/?q={number}")
    assert "Succeeded" in page.inner_text("#result_list")
    assert ErrorGroup.objects.get(pk=group.pk).state == ErrorGroupState.RESOLVED
    shot(page, "job-succeeded")


def test_an_orders_timeline(platform, browser, django_user_model, shot):
    user(django_user_model, "operator", role=OPERATORS)
    number = platform.shop.place_order(total="21.00", card="pm_card_visa", payment_setting_id=7)[
        "OrderNumber"
    ]
    order = wait_for(
        lambda: Order.objects.filter(order_number=number, state=OrderState.AUTHORIZED).first(),
        message="the order adopted",
    )
    page = logged_in(browser, platform.url, "operator")
    page.goto(f"{platform.url}/admin/payments/order/?q={number}")
    page.click(f"#result_list a[href*='/order/{order.pk}/change/']")
    page.get_by_text("Timeline: events, jobs and API calls in order").wait_for()
    text = page.inner_text("body")
    from integrations.models import InboundEvent

    event = InboundEvent.objects.filter(reference=number).first()
    assert f"{event.event_type} ({event.status})" in text  # the Znode event on the timeline
    assert "order-created-collect-payment" in text and "api call" in text
    assert "21.00 USD" in page.content()
    shot(page, "order-timeline")


def test_an_operator_sees_no_secret_and_cannot_edit_a_flow(
    platform, browser, django_user_model, shot
):
    user(django_user_model, "operator", role=OPERATORS)
    page = logged_in(browser, platform.url, "operator")
    shown = page.goto(f"{platform.url}/admin/integrations/connection/{platform.stripe.pk}/change/")
    assert shown.ok and platform.stripe.name in page.inner_text("body")  # the page, viewed
    body = page.content()
    assert "sk_test_e2e_platform_key" not in body and "whsec_e2e_platform_secret" not in body
    assert page.locator("[name=_save]").count() == 0  # view only
    shot(page, "connection-as-operator")
    flow = Flow.objects.get(key="order-created-collect-payment")
    shown = page.goto(f"{platform.url}/admin/integrations/flow/{flow.pk}/change/")
    assert shown.ok and flow.name in page.inner_text("body")
    assert page.locator("[name=_save]").count() == 0
    assert page.locator("[name=name]").count() == 0  # shown, not editable
    shot(page, "flow-as-operator")


def test_finance_downloads_a_payout_export(platform, browser, django_user_model, shot):
    from reconciliation.models import Payout

    user(django_user_model, "finance", role=FINANCE)
    payout = Payout.objects.create(
        integration=platform,
        stripe_payout_id="po_browser",
        amount_minor=0,
        currency="usd",
        status="paid",
        arrival_date=timezone.now(),
    )
    page = logged_in(browser, platform.url, "finance")
    page.goto(f"{platform.url}/admin/reconciliation/payout/")
    page.check(f"input[name=_selected_action][value='{payout.pk}']")
    page.select_option("select[name=action]", "export_csv")
    shot(page, "payouts-as-finance")
    with page.expect_download() as download:
        page.locator("button[name=index]:visible").first.click()
    saved = ARTIFACTS / "payout-export.csv"
    download.value.save_as(str(saved))
    assert download.value.suggested_filename.endswith(".csv")
    assert saved.read_text().splitlines()[0]  # a header row
