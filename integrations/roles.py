"""The ops team's roles: a group each, with the permissions it may use (the admin and
the API check these permissions, never the group's name).

- **Operators** see everything and retry, quarantine, discard, replay, triage error
  groups (and retry or discard them at once), test connections, rebook payments and
  mark customer conflicts reviewed. They change no
  configuration and see no secret (no page shows one to anybody).
- **Finance** sees everything, keeps the GL map and exports payouts (admin and API).
- **Integration developers** see everything and keep the configuration: connections,
  integrations, flows and their steps, mappings, lookup tables and environment
  values, alert channels and rules (and test connections); they import flow bundles.

A migration creates the groups; ``manage.py roles`` resets them to this definition.
Users are added to them in the admin (*Users*). A migration that adds a model (a new
view permission) or changes this definition runs :func:`roles_install` again."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

APPS = ("integrations", "payments", "customers", "reconciliation")
"""The platform's apps: every role may view every one of their models."""

OPERATORS = "Operators"
FINANCE = "Finance"
DEVELOPERS = "Integration developers"

_CONFIGURATION = (
    "connection",
    "integration",
    "flow",
    "flowstep",
    "mapping",
    "mappingfield",
    "mappingsample",
    "lookuptable",
    "environmentvalue",
    "alertchannel",
    "alertrule",
)

ROLES: dict[str, tuple[str, ...]] = {
    OPERATORS: (
        "integrations.operate_job",
        "integrations.replay_event",
        "integrations.triage_errorgroup",
        "integrations.test_connection",
        "payments.rebook_payment",
        "customers.review_customerconflict",
    ),
    FINANCE: (
        "reconciliation.add_glaccount",
        "reconciliation.change_glaccount",
        "reconciliation.export_payout",
    ),
    DEVELOPERS: (
        *(
            f"integrations.{verb}_{model}"
            for model in _CONFIGURATION
            for verb in ("add", "change", "delete")
        ),
        "integrations.test_connection",
        "integrations.import_bundle",
    ),
}
"""What each role may do beyond viewing (``app_label.codename``)."""


def role_permissions(permission_model: Any, role: str, *, missing_ok: bool = False) -> list[Any]:
    """The permission rows of ``role``: every view permission of :data:`APPS`, and the
    role's own. Raises LookupError for a permission that does not exist (a renamed
    model or codename must not silently shrink a role), unless ``missing_ok`` (a
    migration, before the migrations that add those models)."""
    rows = list(
        permission_model.objects.filter(
            content_type__app_label__in=APPS, codename__startswith="view_"
        )
    )
    for label in ROLES[role]:
        app_label, _, codename = label.partition(".")
        found = permission_model.objects.filter(
            content_type__app_label=app_label, codename=codename
        ).first()
        if found is None:
            if missing_ok:
                continue
            raise LookupError(f"role {role}: no permission {label}")
        rows.append(found)
    return rows


def roles_install(
    group_model: Any,
    permission_model: Any,
    roles: Iterable[str] = ROLES,
    *,
    missing_ok: bool = False,
) -> dict[str, int]:
    """Create each role's group, or reset its permissions to the definition; returns
    the number of permissions of each."""
    counts = {}
    for role in roles:
        group, _ = group_model.objects.get_or_create(name=role)
        permissions = role_permissions(permission_model, role, missing_ok=missing_ok)
        group.permissions.set(permissions)
        counts[role] = len(permissions)
    return counts
