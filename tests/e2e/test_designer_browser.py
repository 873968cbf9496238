"""The flow designer in a real browser (issue 14, Deliver 7 and the first "Done when"):
an integration developer opens the order-to-cash flow, adds a Znode field to the
Stripe metadata in the mapping editor, previews it on a real recent order, saves it,
and the next order's PaymentIntent carries it. Debian's Chromium, as in
``test_admin_browser.py``."""

from __future__ import annotations

import pytest

from integrations.choices import JobStatus
from integrations.models import FlowVersion, Job
from integrations.roles import DEVELOPERS
from payments.choices import OrderState
from payments.models import Order
from tests.e2e.conftest import saved_card_customer, stripe_client, wait_for
from tests.support.browser import BROWSER_MARKS, logged_in, user
from tests.support.shop import SAVED_PAYMENT_SETTING_ID

pytest.importorskip("playwright.sync_api")

pytestmark = BROWSER_MARKS

FLOW = "order-created-collect-payment"


def paid_order(platform, user_id: int, total: str) -> tuple[Order, Job]:
    number = platform.shop.place_order(
        user_id=user_id, total=total, payment_setting_id=SAVED_PAYMENT_SETTING_ID
    )["OrderNumber"]
    order = wait_for(
        lambda: Order.objects.filter(order_number=number, state=OrderState.PAID).first(),
        message=f"order {number} paid",
    )
    job = wait_for(
        lambda: Job.objects.filter(
            flow__key=FLOW, reference=number, status=JobStatus.SUCCEEDED
        ).first(),
        message="its collecting job done",
    )
    return order, job


def test_a_developer_adds_a_field_to_the_metadata_previews_it_and_the_next_order_has_it(
    platform, sandbox, browser, django_user_model, shot
):
    developer = user(django_user_model, "developer", role=DEVELOPERS)
    saved_card_customer(sandbox, user_id=12, email="bob@example.com")
    first, first_job = paid_order(platform, 12, "42.50")

    page = logged_in(browser, platform.url, developer.username)
    page.goto(f"{platform.url}/admin/integrations/flow/?q={FLOW}")
    page.click(f"#result_list a:text-is('{FLOW}')")
    page.wait_for_selector("#flow-designer")
    assert "No problem found" in page.inner_text("#flow-designer")
    shot(page, "flow-designer")

    page.click(f"text=edit the mapping {FLOW}.payment")
    page.wait_for_selector("#mapping-preview")
    total = page.locator("#id_fields-TOTAL_FORMS")
    index = int(total.input_value())
    page.locator("#fields-group a.add-row").first.click()
    page.fill(f"#id_fields-{index}-position", "10")
    page.fill(f"#id_fields-{index}-target", "metadata.shopper_email")
    page.fill(f"#id_fields-{index}-source", "steps.fetch.email")
    page.select_option("#preview-sample", f"job:{first_job.pk}")
    page.click("#preview-button")
    row = page.locator('#preview-result tr[data-target="metadata.shopper_email"]')
    row.wait_for()
    assert first.email in row.inner_text()  # the real recent order's value
    assert "shopper_email" in page.inner_text("#preview-inputs")
    shot(page, "mapping-preview")

    page.fill("#id_change_reason", "the shopper's email on the PaymentIntent")
    page.click("[name=_save]")
    page.wait_for_url(f"{platform.url}/admin/integrations/mapping/")
    version = FlowVersion.objects.filter(flow__key=FLOW).order_by("-number").first()
    assert version.created_by == "developer"
    assert version.reason == "the shopper's email on the PaymentIntent"
    shot(page, "saved")

    saved_card_customer(sandbox, user_id=14, email="dana@example.com")
    second, second_job = paid_order(platform, 14, "19.00")
    intent = stripe_client(sandbox).v1.payment_intents.retrieve(
        second.payments.get().payment_intent_id
    )
    assert intent.metadata["shopper_email"] == second.email
    assert intent.metadata["znode_order_number"] == second.order_number  # ours kept
    assert second_job.flow_version_id == version.pk
    old = stripe_client(sandbox).v1.payment_intents.retrieve(first.payments.get().payment_intent_id)
    assert "shopper_email" not in old.metadata
