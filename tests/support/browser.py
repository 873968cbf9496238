"""Driving the admin in Debian's Chromium with Playwright (the browser tests of the
operations and designer issues): the marks, the fixtures' helpers, a user and a
logged-in page. A test tool cannot download a browser offline: ``/usr/bin/chromium``
(or ``CHROMIUM_PATH``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission

from integrations.roles import roles_install

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS", "var/test-artifacts/browser"))
PASSWORD = "a-long-browser-test-password"

BROWSER_MARKS = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("quiet_sandbox"),
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]


def user(django_user_model, name: str, *, role: str | None = None, superuser: bool = False):
    if superuser:
        return django_user_model.objects.create_superuser(name, password=PASSWORD)
    roles_install(Group, Permission)
    made = django_user_model.objects.create_user(name, password=PASSWORD, is_staff=True)
    made.groups.add(Group.objects.get(name=role))
    return made


def logged_in(browser, live_url: str, name: str):
    page = browser.new_page()
    page.goto(f"{live_url}/admin/login/?next=/admin/")
    page.fill("#id_username", name)
    page.fill("#id_password", PASSWORD)
    page.click("#login-form [type=submit], form [type=submit]")
    page.wait_for_url(f"{live_url}/admin/")
    return page
