"""Login throttling (issue 13, Deliver 6; django-axes): after AXES_FAILURE_LIMIT wrong
passwords for one username from one address, that pair is locked out, a right password
included, on the admin's login and on the API's Basic auth alike; others are not."""

from __future__ import annotations

import base64

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("ops", password=PASSWORD, is_staff=True)


def _login(client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_the_admin_login_locks_a_username_out_after_the_failures_allowed(client, staff):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, "ops", "wrong").status_code == 200  # the form, again
    assert _login(client, "ops", "wrong").status_code == 429

    locked = _login(client, "ops", PASSWORD)

    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    # Another address is another pair: the owner of the account still gets in.
    assert _login(client, "ops", PASSWORD, address="10.0.0.2").status_code == 302
    assert client.session["_auth_user_id"] == str(staff.pk)


def test_a_right_password_before_the_limit_resets_the_count(client, staff):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(client, "ops", "wrong")
    assert _login(client, "ops", PASSWORD).status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, "ops", "wrong").status_code == 200
    assert _login(client, "ops", PASSWORD).status_code == 302


def test_the_apis_basic_auth_is_throttled_too(client, django_user_model):
    user = django_user_model.objects.create_user("finance", password=PASSWORD)
    user.user_permissions.add(Permission.objects.get(codename="export_payout"))

    def basic(password: str) -> int:
        token = base64.b64encode(f"finance:{password}".encode()).decode()
        return client.get(
            "/api/reconciliation/payouts/",
            HTTP_AUTHORIZATION=f"Basic {token}",
            REMOTE_ADDR="10.0.0.9",
        ).status_code

    for _ in range(2):  # a right password resets the count, as an admin login does
        assert [basic("wrong") for _ in range(settings.AXES_FAILURE_LIMIT - 1)] == [401] * 4
        assert basic(PASSWORD) == 200
    assert [basic("wrong") for _ in range(settings.AXES_FAILURE_LIMIT)] == [401] * 4 + [429]

    locked = client.get(
        "/api/reconciliation/payouts/",
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"finance:{PASSWORD}".encode()).decode(),
        REMOTE_ADDR="10.0.0.9",
    )
    assert locked.status_code == 429
    assert locked["Retry-After"] == str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    assert locked.json()["detail"].startswith("Too many failed logins")


def test_behind_a_proxy_the_address_is_the_one_it_saw_not_what_the_client_says(
    client, staff, settings
):
    """One proxy of ours (TRUSTED_PROXY_COUNT=1): the last X-Forwarded-For entry is the
    client's; a client that sends its own entries cannot dodge the lockout with them,
    and clients behind the same proxy are not one address."""
    settings.TRUSTED_PROXY_COUNT = 1

    def login(password: str, forwarded: str):
        return client.post(
            LOGIN,
            {"username": "ops", "password": password},
            REMOTE_ADDR="10.9.9.9",  # the proxy
            HTTP_X_FORWARDED_FOR=forwarded,
        )

    statuses = [
        login("wrong", f"198.51.100.{n}, 203.0.113.7").status_code
        for n in range(settings.AXES_FAILURE_LIMIT)
    ]

    assert statuses[-1] == 429  # the spoofed entries changed nothing
    assert login(PASSWORD, "203.0.113.7").status_code == 429
    assert login(PASSWORD, "203.0.113.8").status_code == 302  # another client
