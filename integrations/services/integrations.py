"""Creating and changing integrations (a Znode store, a Stripe account, an ERP)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction

from integrations.choices import ConnectionKind
from integrations.kernel.exceptions import DataError
from integrations.models import Connection, Integration
from integrations.services.connections import change_reason, full_clean
from integrations.services.jobs import jobs_resume
from integrations.settings_schema import integration_schema


def _check_kind(connection: Connection | None, kind: str) -> None:
    if connection is not None and connection.kind != kind:
        raise DataError(
            f"connection {connection.name!r} is a {connection.kind} connection, not {kind}"
        )


def integration_create(
    *,
    name: str,
    znode: Connection,
    stripe: Connection,
    erp: Connection | None = None,
    settings: Mapping[str, Any] | None = None,
    enabled: bool = True,
    reason: str = "created",
) -> Integration:
    """A new integration; settings are checked against the registered schema."""
    _check_kind(znode, ConnectionKind.ZNODE)
    _check_kind(stripe, ConnectionKind.STRIPE)
    _check_kind(erp, ConnectionKind.ERP)
    if Integration.objects.filter(name=name).exists():
        raise DataError(f"an integration named {name!r} already exists")
    integration = Integration(
        name=name,
        znode=znode,
        stripe=stripe,
        erp=erp,
        enabled=enabled,
        settings=integration_schema().validate(settings),
    )
    full_clean(integration)
    integration._change_reason = change_reason(reason)
    integration.save()
    return integration


def integration_update(
    *,
    integration: Integration,
    znode: Connection | None = None,
    stripe: Connection | None = None,
    erp: Connection | None = None,
    remove_erp: bool = False,
    settings: Mapping[str, Any] | None = None,
    unset: Iterable[str] = (),
    enabled: bool | None = None,
    reason: str = "updated",
) -> Integration:
    """Change what is given (``None``: unchanged; ``remove_erp`` drops the ERP).
    Settings are merged into the stored ones, ``unset`` removes keys, and the result
    is checked as a whole; nothing is written when anything is wrong.

    Pausing (``enabled=False``) holds the integration's work: events keep arriving
    and their jobs wait (*paused*); enabling it again resumes them at once
    (``jobs_resume``), and the sweeper resumes what is left."""
    if erp is not None and remove_erp:
        raise DataError("give an ERP connection or remove the ERP, not both")
    _check_kind(znode, ConnectionKind.ZNODE)
    _check_kind(stripe, ConnectionKind.STRIPE)
    _check_kind(erp, ConnectionKind.ERP)
    unset = list(unset)
    with transaction.atomic():
        row = Integration.objects.select_for_update().get(pk=integration.pk)
        if settings or unset:
            row.settings = integration_schema().update(row.settings, settings, unset)
        if znode is not None:
            row.znode = znode
        if stripe is not None:
            row.stripe = stripe
        if erp is not None or remove_erp:
            row.erp = erp
        resumed = enabled is True and not row.enabled
        if enabled is not None:
            row.enabled = enabled
        full_clean(row)
        row._change_reason = change_reason(reason)
        row.save()
        if resumed:
            jobs_resume(integration=row)
    return row
