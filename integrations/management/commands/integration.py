"""Scripted integration set-up: `manage.py integration create|list|update`."""

import json

from django.core.management.base import BaseCommand, CommandError

from integrations.choices import ConnectionKind
from integrations.kernel.exceptions import DataError
from integrations.models import Integration
from integrations.services.connections import connection_by_name
from integrations.services.integrations import integration_create, integration_update
from integrations.settings_schema import integration_schema, parse_cli_all


def describe(integration: Integration) -> str:
    """One line per integration; settings hold no secrets (credentials live on the
    connections and are never printed)."""
    erp = integration.erp.name if integration.erp else "-"
    return (
        f"{integration.name}\tznode: {integration.znode.name}\t"
        f"stripe: {integration.stripe.name}\terp: {erp}\t"
        f"{'enabled' if integration.enabled else 'disabled'}\t"
        f"settings: {json.dumps(integration.settings, sort_keys=True, ensure_ascii=False)}"
    )


class Command(BaseCommand):
    help = (
        "Create, list or update integrations (a Znode store, a Stripe account and optionally "
        "an ERP). Settings: see `manage.py settings_doc`."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", required=True)
        create = sub.add_parser("create", help="Create an integration from existing connections.")
        create.add_argument("--name", required=True)
        create.add_argument("--znode", required=True, help="Name of the Znode connection.")
        create.add_argument("--stripe", required=True, help="Name of the Stripe connection.")
        create.add_argument("--erp", help="Name of the ERP connection (optional).")
        create.add_argument(
            "--setting", action="append", default=[], metavar="NAME=VALUE", help="Repeatable."
        )
        create.add_argument("--disabled", action="store_true", help="Create it switched off.")
        create.add_argument("--reason", default="", help="Kept in the history.")

        update = sub.add_parser("update", help="Change an integration; records the reason.")
        update.add_argument("name")
        update.add_argument("--znode", help="Name of the new Znode connection.")
        update.add_argument("--stripe", help="Name of the new Stripe connection.")
        erp = update.add_mutually_exclusive_group()
        erp.add_argument("--erp", help="Name of the new ERP connection.")
        erp.add_argument("--no-erp", action="store_true", help="Remove the ERP connection.")
        update.add_argument(
            "--setting", action="append", default=[], metavar="NAME=VALUE", help="Repeatable."
        )
        update.add_argument(
            "--unset", action="append", default=[], metavar="NAME", help="Back to the default."
        )
        enabled = update.add_mutually_exclusive_group()
        enabled.add_argument("--enable", dest="enabled", action="store_const", const=True)
        enabled.add_argument("--disable", dest="enabled", action="store_const", const=False)
        update.add_argument("--reason", default="", help="Kept in the history.")

        sub.add_parser("list", help="List integrations with their connections and settings.")

    def handle(self, *args, subcommand, **options):
        try:
            return getattr(self, f"handle_{subcommand}")(**options)
        except DataError as exc:
            raise CommandError(exc.message) from exc

    def handle_create(self, *, name, znode, stripe, erp, setting, disabled, reason, **_):
        integration = integration_create(
            name=name,
            znode=connection_by_name(name=znode, kind=ConnectionKind.ZNODE),
            stripe=connection_by_name(name=stripe, kind=ConnectionKind.STRIPE),
            erp=connection_by_name(name=erp, kind=ConnectionKind.ERP) if erp else None,
            settings=parse_cli_all(integration_schema(), setting),
            enabled=not disabled,
            reason=reason or "created with manage.py integration create",
        )
        self.stdout.write(describe(integration))

    def handle_update(
        self, *, name, znode, stripe, erp, no_erp, setting, unset, enabled, reason, **_
    ):
        integration = Integration.objects.filter(name=name).first()
        if integration is None:
            raise CommandError(f"no integration named {name!r}")
        changes = parse_cli_all(integration_schema(), setting)
        changed = [
            *(f"{what}={value}" for what, value in (("znode", znode), ("stripe", stripe)) if value),
            *([f"erp={erp}"] if erp else ["no erp"] if no_erp else []),
            *(f"set {key}" for key in changes),
            *(f"unset {key}" for key in unset),
            *([("enabled" if enabled else "disabled")] if enabled is not None else []),
        ]
        if not changed:
            raise CommandError("nothing to change; see `manage.py integration update --help`")
        integration = integration_update(
            integration=integration,
            znode=connection_by_name(name=znode, kind=ConnectionKind.ZNODE) if znode else None,
            stripe=connection_by_name(name=stripe, kind=ConnectionKind.STRIPE) if stripe else None,
            erp=connection_by_name(name=erp, kind=ConnectionKind.ERP) if erp else None,
            remove_erp=no_erp,
            settings=changes,
            unset=unset,
            enabled=enabled,
            reason=reason or f"manage.py integration update: {', '.join(changed)}",
        )
        self.stdout.write(describe(integration))

    def handle_list(self, **_):
        rows = Integration.objects.select_related("znode", "stripe", "erp").order_by("name")
        if not rows:
            self.stdout.write("no integrations")
            return
        for integration in rows:
            self.stdout.write(describe(integration))
