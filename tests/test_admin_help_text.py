"""Every field an operator sees in the admin says what it is (its help text)."""

import pytest
from django.contrib import admin

from integrations.admin import AlertChannelForm, ConnectionForm, ErrorGroupForm

APPS = ("integrations", "payments", "customers", "reconciliation")


def _blank(text) -> bool:
    return not str(text or "").strip()


def test_every_admin_model_field_has_help_text():
    offenders = [
        f"{model._meta.label}.{field.name}"
        for model in admin.site._registry
        if model._meta.app_label in APPS
        for field in model._meta.get_fields()
        if getattr(field, "concrete", False) and not field.auto_created and _blank(field.help_text)
    ]
    assert not offenders, "fields without help_text: " + ", ".join(sorted(offenders))


def test_the_apps_have_admin_models():
    labels = {model._meta.app_label for model in admin.site._registry}
    assert set(APPS) <= labels


@pytest.mark.parametrize("form_class", [ConnectionForm, ErrorGroupForm, AlertChannelForm])
def test_every_custom_admin_form_field_has_help_text(form_class):
    form = form_class()
    offenders = [name for name, field in form.fields.items() if _blank(field.help_text)]
    assert form.fields
    assert not offenders, f"{form_class.__name__} fields without help_text: " + ", ".join(offenders)
