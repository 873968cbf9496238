"""The ops team's roles (issue 13, Deliver 6): groups made by a migration, each with its
permissions, enforced by the admin and the API."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command

from integrations.roles import DEVELOPERS, FINANCE, OPERATORS, ROLES
from tests.conftest import make_flow

pytestmark = pytest.mark.django_db

JOB_ACTIONS = [
    "integrations.operate_job",
    "integrations.replay_event",
    "integrations.test_connection",
    "payments.rebook_payment",
    "customers.review_customerconflict",
]
CONFIGURATION = [
    "integrations.change_connection",
    "integrations.add_flow",
    "integrations.change_flow",
    "integrations.change_mapping",
    "integrations.change_lookuptable",
]


def member(django_user_model, role: str, name: str):
    user = django_user_model.objects.create_user(name, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return django_user_model.objects.get(pk=user.pk)  # no permission cache


def test_the_migration_made_the_groups_of_the_three_roles():
    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLES)
    views = Permission.objects.filter(
        content_type__app_label__in=["integrations", "payments", "customers", "reconciliation"],
        codename__startswith="view_",
    )
    for role in ROLES:
        assert set(views) <= set(Group.objects.get(name=role).permissions.all()), role


def test_each_role_may_do_what_it_is_for_and_no_more(django_user_model):
    operator = member(django_user_model, OPERATORS, "op")
    finance = member(django_user_model, FINANCE, "fin")
    developer = member(django_user_model, DEVELOPERS, "dev")

    assert operator.has_perms(["integrations.view_job", "payments.view_order", *JOB_ACTIONS])
    assert not any(operator.has_perm(p) for p in CONFIGURATION)
    assert not operator.has_perm("reconciliation.export_payout")
    assert not operator.has_perm("customers.confirm_customerlink")  # a supervisor's call

    assert finance.has_perms(["reconciliation.export_payout", "reconciliation.change_glaccount"])
    assert finance.has_perm("integrations.view_job")  # read-only elsewhere
    assert not any(finance.has_perm(p) for p in [*JOB_ACTIONS, *CONFIGURATION])

    assert developer.has_perms([*CONFIGURATION, "integrations.test_connection"])
    assert not developer.has_perm("integrations.operate_job")
    assert not developer.has_perm("reconciliation.export_payout")
    for user in (operator, finance, developer):
        assert not user.has_perm("auth.change_user") and not user.has_perm("auth.add_group")


def test_the_admin_lets_an_operator_see_a_connection_but_not_its_secret_nor_edit_it(
    client, django_user_model, stripe_connection
):
    client.force_login(member(django_user_model, OPERATORS, "op"))
    page = f"/admin/integrations/connection/{stripe_connection.pk}/change/"

    shown = client.get(page)
    posted = client.post(page, {"name": "renamed", "kind": "stripe"})

    assert shown.status_code == 200
    html = shown.content.decode()
    assert "sk_test_51TESTKEYabcdefghijkl" not in html and 'name="_save"' not in html
    assert posted.status_code == 403
    stripe_connection.refresh_from_db()
    assert stripe_connection.name == "stripe-test"


def test_the_admin_lets_a_developer_edit_a_flow_and_an_operator_only_look(
    client, django_user_model
):
    flow = make_flow("roles-flow")
    page = f"/admin/integrations/flow/{flow.pk}/change/"

    client.force_login(member(django_user_model, OPERATORS, "op"))
    assert 'name="_save"' not in client.get(page).content.decode()
    client.force_login(member(django_user_model, DEVELOPERS, "dev"))
    assert 'name="_save"' in client.get(page).content.decode()


def test_the_finance_api_answers_finance_and_refuses_the_other_roles(client, django_user_model):
    for role, name, status in (
        (FINANCE, "fin", 200),
        (OPERATORS, "op", 403),
        (DEVELOPERS, "dev", 403),
    ):
        client.force_login(member(django_user_model, role, name))
        assert client.get("/api/reconciliation/payouts/").status_code == status, role


def test_the_command_resets_a_group_edited_by_hand():
    operators = Group.objects.get(name=OPERATORS)
    operators.permissions.add(Permission.objects.get(codename="change_connection"))
    operators.permissions.remove(Permission.objects.get(codename="operate_job"))

    out = StringIO()
    call_command("roles", stdout=out)
    call_command("roles", stdout=StringIO())  # idempotent

    codenames = set(operators.permissions.values_list("codename", flat=True))
    assert "operate_job" in codenames and "change_connection" not in codenames
    assert f"{OPERATORS}: " in out.getvalue() and f"{DEVELOPERS}: " in out.getvalue()


def test_a_view_only_role_cannot_revert_a_history_version(
    client, django_user_model, stripe_connection
):
    """simple-history saves a POST to a past version's page for anyone who may view it:
    reverting needs the change permission here."""
    version = stripe_connection.history.earliest().history_id
    page = f"/admin/integrations/connection/{stripe_connection.pk}/history/{version}/"
    form = {"name": "taken", "kind": "stripe", "enabled": "", "add_webhook_secret": "whsec_mine"}
    secrets = len(stripe_connection.secret_list())

    for role, name in ((OPERATORS, "op"), (FINANCE, "fin")):
        client.force_login(member(django_user_model, role, name))
        assert client.get(page).status_code == 200  # looking is allowed
        assert client.post(page, form).status_code == 403

    stripe_connection.refresh_from_db()
    assert (stripe_connection.name, stripe_connection.enabled) == ("stripe-test", True)
    assert len(stripe_connection.secret_list()) == secrets
