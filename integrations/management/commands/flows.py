"""``manage.py flows export [--flow KEY ...] [--output FILE]`` and
``manage.py flows import BUNDLE [--dry-run]``: flows between environments."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from integrations.kernel.exceptions import DataError
from integrations.services.bundles import bundle_apply, bundle_export, bundle_plan


class Command(BaseCommand):
    help = (
        "Export flows, their mappings and lookup tables as a bundle (JSON, never a "
        "connection or a secret), or import one: --dry-run shows what would change here."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="command", required=True)
        export = sub.add_parser("export", help="Write a bundle.")
        export.add_argument(
            "--flow", action="append", dest="flows", help="A flow's key (repeat; all if none)."
        )
        export.add_argument("--output", help="The file to write (standard output if none).")
        imported = sub.add_parser("import", help="Import a bundle.")
        imported.add_argument("bundle", help="The bundle's file.")
        imported.add_argument(
            "--dry-run", action="store_true", help="Show the changes, write nothing."
        )
        imported.add_argument(
            "--user", default="", help="Who imports it, for the audit (default: the OS user)."
        )

    def handle(self, *args, **options):
        try:
            if options["command"] == "export":
                return self._export(options)
            return self._import(options)
        except DataError as error:
            raise CommandError(error.message) from error

    def _export(self, options) -> None:
        bundle = bundle_export(options["flows"], source=settings.INTEGRATIONS["ENVIRONMENT_NAME"])
        text = json.dumps(bundle, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        if options["output"]:
            Path(options["output"]).write_text(text, encoding="utf-8")
            self.stderr.write(
                f"{len(bundle['flows'])} flow(s), {len(bundle['lookups'])} lookup table(s) "
                f"→ {options['output']} (hash {bundle['hash'][:12]})"
            )
        else:
            self.stdout.write(text, ending="")

    def _import(self, options) -> None:
        path = Path(options["bundle"])
        try:
            bundle = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise CommandError(f"cannot read the bundle {path}: {error}") from error
        if options["dry_run"]:
            plan = bundle_plan(bundle)
            self.stdout.write("dry run, nothing written:")
            for line in plan.lines():
                self.stdout.write(line)
            if plan.problems:
                raise CommandError(f"{len(plan.problems)} problem(s): the import would be refused")
            return
        import getpass

        user = options["user"] or f"{getpass.getuser()} (manage.py)"
        plan = bundle_apply(bundle, name=path.name, user=user)
        for line in plan.lines():
            self.stdout.write(line)
        changed = len(plan.changed)
        self.stdout.write(self.style.SUCCESS(f"imported: {changed} change(s)"))
