"""Scripted connection set-up: `manage.py connection create|list|test|update`."""

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from integrations.choices import ConnectionKind, Environment
from integrations.kernel.exceptions import DataError
from integrations.models import Connection
from integrations.services.connections import (
    connection_by_name,
    connection_create,
    connection_test,
    connection_update,
    credentials_parse,
    rate_limit,
)
from integrations.settings_schema import connection_schema, parse_cli_all


def add_credential_arguments(parser) -> None:
    parser.add_argument(
        "--credential-file",
        metavar="PATH",
        help="Credentials from a file: a JSON object, or KEY=VALUE lines (# comments).",
    )
    parser.add_argument(
        "--credentials-stdin",
        action="store_true",
        help="Read credentials from standard input, in the format of --credential-file.",
    )
    parser.add_argument(
        "--credential",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Repeatable. For tests only: the value shows in `ps` and the shell history.",
    )


class Command(BaseCommand):
    help = (
        "Create, list, test or update connections. Secrets are never printed. "
        "Settings: see `manage.py settings_doc`."
    )
    stealth_options = ("stdin",)  # call_command(..., stdin=StringIO(...)) in tests

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
        add_credential_arguments(create)
        create.add_argument(
            "--setting", action="append", default=[], metavar="NAME=VALUE", help="Repeatable."
        )
        create.add_argument(
            "--rate-limit", metavar="PER_SECOND", help="Outbound requests per second (default 5)."
        )
        sub.add_parser("list", help="List connections (no secrets).")
        test = sub.add_parser("test", help="Make one authenticated call.")
        test.add_argument("name")

        update = sub.add_parser(
            "update",
            help="Change settings, rate limit, base URL, credentials or the enabled flag. "
            "A new base URL or token URL needs every stored credential given again.",
        )
        update.add_argument("name")
        update.add_argument("--base-url")
        add_credential_arguments(update)
        update.add_argument(
            "--setting", action="append", default=[], metavar="NAME=VALUE", help="Repeatable."
        )
        update.add_argument(
            "--unset", action="append", default=[], metavar="NAME", help="Back to the default."
        )
        update.add_argument("--rate-limit", metavar="PER_SECOND")
        enabled = update.add_mutually_exclusive_group()
        enabled.add_argument("--enable", dest="enabled", action="store_const", const=True)
        enabled.add_argument("--disable", dest="enabled", action="store_const", const=False)
        update.add_argument("--reason", default="", help="Kept in the history.")

    def handle(self, *args, subcommand, **options):
        try:
            return getattr(self, f"handle_{subcommand}")(**options)
        except DataError as exc:
            raise CommandError(exc.message) from exc

    @staticmethod
    def _rate(text: str | None):
        return rate_limit(text) if text is not None else None

    @staticmethod
    def _pairs(values, what):
        pairs = {}
        for item in values:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise CommandError(f"--{what} expects KEY=VALUE, got {item.split('=')[0]!r}")
            pairs[key] = value
        return pairs

    def _credentials(self, options) -> dict[str, str]:
        """--credential-file, then standard input, then --credential; a key given by
        two of them is refused rather than one silently winning."""
        sources = []
        if path := options["credential_file"]:
            try:
                sources.append(credentials_parse(Path(path).read_text(encoding="utf-8")))
            except OSError as error:
                raise CommandError(f"--credential-file: {error.strerror}: {path}") from None
        if options["credentials_stdin"]:
            sources.append(credentials_parse((options.get("stdin") or sys.stdin).read()))
        sources.append(self._pairs(options["credential"], "credential"))
        merged: dict[str, str] = {}
        for source in sources:
            if twice := sorted(set(merged) & set(source)):
                raise CommandError(f"credential {', '.join(twice)} given twice")
            merged.update(source)
        return merged

    def handle_create(
        self, *, kind, name, base_url, environment, webhook_secret, setting, rate_limit, **options
    ):
        rate = self._rate(rate_limit)
        connection = connection_create(
            name=name,
            kind=kind,
            base_url=base_url,
            environment=environment,
            credentials=self._credentials(options),
            webhook_secrets=webhook_secret,
            settings=parse_cli_all(connection_schema(kind), setting),
            rate_limit_per_second=rate,
        )
        self.stdout.write(connection.webhook_path)

    def handle_update(
        self, *, name, base_url, setting, unset, rate_limit, enabled, reason, **options
    ):
        connection = connection_by_name(name=name)
        rate = self._rate(rate_limit)
        changes = parse_cli_all(connection_schema(connection.kind), setting)
        credentials = self._credentials(options)
        changed = [
            *(["base URL"] if base_url is not None else []),
            *([f"credentials {', '.join(sorted(credentials))}"] if credentials else []),
            *(f"set {key}" for key in changes),
            *(f"unset {key}" for key in unset),
            *([f"rate limit {rate}/s"] if rate is not None else []),
            *([("enabled" if enabled else "disabled")] if enabled is not None else []),
        ]
        if not changed:
            raise CommandError("nothing to change; see `manage.py connection update --help`")
        connection = connection_update(
            connection=connection,
            base_url=base_url,
            settings=changes,
            unset=unset,
            credentials=credentials,
            rate_limit_per_second=rate,
            enabled=enabled,
            reason=reason or f"manage.py connection update: {', '.join(changed)}",
        )
        self.stdout.write(self._describe(connection))

    def handle_list(self, **_):
        rows = Connection.objects.order_by("name")
        if not rows:
            self.stdout.write("no connections")
            return
        for connection in rows:
            self.stdout.write(self._describe(connection))

    @staticmethod
    def _describe(c: Connection) -> str:
        return (
            f"{c.name}\t{c.kind}\t{c.environment}\t{'enabled' if c.enabled else 'disabled'}\t"
            f"{c.base_url or '-'}\tcredentials: {c.credentials.describe()}\t"
            f"webhook secrets: {len(c.secret_list())}\t{c.webhook_path}\t"
            f"rate limit: {c.rate_limit_per_second:.2f}/s\t"
            f"settings: {json.dumps(c.settings, sort_keys=True, ensure_ascii=False)}"
        )

    def handle_test(self, *, name, **_):
        connection = connection_by_name(name=name)
        result = connection_test(connection=connection)
        self.stdout.write(result.message)
        if not result.ok:
            raise CommandError("connection test failed")
