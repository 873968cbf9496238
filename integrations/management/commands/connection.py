"""Scripted connection set-up: `manage.py connection create|list`."""

from django.core.management.base import BaseCommand, CommandError

from integrations.choices import ConnectionKind, Environment
from integrations.exceptions import DataError
from integrations.models import Connection
from integrations.services.connections import connection_create, connection_test


class Command(BaseCommand):
    help = "Create, list or test connections. Secrets are never printed."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", required=True)
        create = sub.add_parser("create", help="Create a connection; prints its webhook path.")
        create.add_argument("--kind", required=True, choices=ConnectionKind.values)
        create.add_argument("--name", required=True)
        create.add_argument("--base-url", default="")
        create.add_argument("--environment", default=Environment.DEV, choices=Environment.values)
        create.add_argument(
            "--webhook-secret", action="append", default=[], help="Repeat for several."
        )
        create.add_argument(
            "--credential", action="append", default=[], metavar="KEY=VALUE", help="Repeatable."
        )
        create.add_argument(
            "--setting", action="append", default=[], metavar="KEY=VALUE", help="Repeatable."
        )
        sub.add_parser("list", help="List connections (no secrets).")
        test = sub.add_parser("test", help="Make one authenticated call.")
        test.add_argument("name")

    def handle(self, *args, subcommand, **options):
        return getattr(self, f"handle_{subcommand}")(**options)

    @staticmethod
    def _pairs(values, what):
        pairs = {}
        for item in values:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise CommandError(f"--{what} expects KEY=VALUE, got {item.split('=')[0]!r}")
            pairs[key] = value
        return pairs

    def handle_create(
        self, *, kind, name, base_url, environment, webhook_secret, credential, setting, **_
    ):
        try:
            connection = connection_create(
                name=name,
                kind=kind,
                base_url=base_url,
                environment=environment,
                credentials=self._pairs(credential, "credential"),
                webhook_secrets=webhook_secret,
                settings=self._pairs(setting, "setting"),
            )
        except DataError as exc:
            raise CommandError(exc.message) from exc
        except Exception as exc:  # validation errors from full_clean
            raise CommandError(str(exc)) from exc
        self.stdout.write(connection.webhook_path)

    def handle_list(self, **_):
        rows = Connection.objects.order_by("name")
        if not rows:
            self.stdout.write("no connections")
            return
        for c in rows:
            self.stdout.write(
                f"{c.name}\t{c.kind}\t{c.environment}\t{'enabled' if c.enabled else 'disabled'}\t"
                f"{c.base_url or '-'}\tcredentials: {c.credentials.describe()}\t"
                f"webhook secrets: {len(c.secret_list())}\t{c.webhook_path}"
            )

    def handle_test(self, *, name, **_):
        connection = Connection.objects.filter(name=name).first()
        if connection is None:
            raise CommandError(f"no connection named {name!r}")
        result = connection_test(connection=connection)
        self.stdout.write(result.message)
        if not result.ok:
            raise CommandError("connection test failed")
