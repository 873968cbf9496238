"""The customers' admin pages (issue 11): links with their saved cards and
conflicts, the conflict list an operator works through, least privilege."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from customers.models import CustomerConflict, CustomerLink, MatchedBy, SavedCard
from integrations.models import Job
from integrations.services.flows import flows_install_defaults

pytestmark = pytest.mark.django_db


@pytest.fixture
def conflict(integration):
    flows_install_defaults()
    link = CustomerLink.objects.create(
        integration=integration, znode_user_id=7, stripe_customer_id="cus_7", email="a@x.io"
    )
    SavedCard.objects.create(
        link=link,
        stripe_payment_method_id="pm_1",
        brand="visa",
        last4="4242",
        exp_month=4,
        exp_year=2031,
        is_default=True,
    )
    return CustomerConflict.objects.create(
        link=link,
        field="phone",
        base_value="1",
        znode_value="2",
        stripe_value="3",
        winner="znode",
        rule="owner",
    )


def _staff(django_user_model, *codenames):
    user = django_user_model.objects.create_user("ops", password="pw", is_staff=True)
    views = ("view_customerlink", "view_savedcard", "view_customerconflict")
    for codename in (*views, *codenames):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def test_a_links_page_shows_its_saved_cards_and_conflicts(client, django_user_model, conflict):
    client.force_login(_staff(django_user_model))

    page = client.get(f"/admin/customers/customerlink/{conflict.link.pk}/change/")

    text = page.content.decode()
    assert page.status_code == 200
    assert "4242" in text and "visa" in text and "2031" in text and "phone" in text


def test_marking_conflicts_reviewed_needs_its_permission(client, django_user_model, conflict):
    user = _staff(django_user_model)
    client.force_login(user)
    url = "/admin/customers/customerconflict/"
    body = {"action": "mark_reviewed", "_selected_action": [conflict.pk]}

    assert "mark_reviewed" not in client.get(url).content.decode()
    client.post(url, body)
    conflict.refresh_from_db()
    assert conflict.reviewed_at is None

    user.user_permissions.add(Permission.objects.get(codename="review_customerconflict"))
    client.post(url, body)
    conflict.refresh_from_db()
    assert conflict.reviewed_at is not None and conflict.reviewed_by == "ops"


def test_confirming_an_email_match_and_unlinking_need_their_permissions(
    client, django_user_model, conflict
):
    link = conflict.link
    link.matched_by = MatchedBy.EMAIL
    link.save()
    user = _staff(django_user_model)
    client.force_login(user)
    url = "/admin/customers/customerlink/"

    for action in ("confirm_match", "unlink"):
        client.post(url, {"action": action, "_selected_action": [link.pk]})
    link.refresh_from_db()
    assert link.matched_by == MatchedBy.EMAIL  # neither ran

    user.user_permissions.add(Permission.objects.get(codename="confirm_customerlink"))
    client.post(url, {"action": "confirm_match", "_selected_action": [link.pk]})
    link.refresh_from_db()
    assert link.matched_by == MatchedBy.CONFIRMED
    assert link.history.first().history_change_reason == "email match confirmed by ops"
    job = Job.objects.get(reference="user:7")  # its profile may now cross: a sync job
    assert job.flow.key == "user-updated" and job.context["filed_by"] == "confirmed"

    user.user_permissions.add(Permission.objects.get(codename="delete_customerlink"))
    client.post(url, {"action": "unlink", "_selected_action": [link.pk]})
    assert not CustomerLink.objects.exists()
    conflict.refresh_from_db()
    assert conflict.link is None  # the evidence stays
