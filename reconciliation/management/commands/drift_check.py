"""``manage.py drift_check --integration NAME [--days N]``."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from integrations.kernel.exceptions import IntegrationError
from integrations.models import Integration
from reconciliation.drift import drift_check


class Command(BaseCommand):
    help = (
        "Compare Znode orders, Stripe payments and refunds, and ERP entries of the last "
        "N days; file each new mismatch as a quarantined drift-recheck job with its reason."
    )

    def add_arguments(self, parser):
        parser.add_argument("--integration", required=True, help="The integration's name.")
        parser.add_argument("--days", type=int, default=7, help="How far back (default 7).")
        parser.add_argument(
            "--grace-minutes",
            type=int,
            default=15,
            help="Leave what happened in the last minutes to the jobs still on it (default 15).",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options):
        integration = Integration.objects.filter(name=options["integration"]).first()
        if integration is None:
            raise CommandError(f"no integration named {options['integration']!r}")
        if options["days"] < 1:
            raise CommandError("--days must be 1 or more")
        bar = tqdm(
            unit=" objects", desc="drift", disable=options["no_progress"], file=self.stderr._out
        )
        try:
            report = drift_check(
                integration=integration,
                days=options["days"],
                grace=timedelta(minutes=max(options["grace_minutes"], 0)),
                progress=bar.update,
            )
        except IntegrationError as error:
            raise CommandError(f"stopped: {error}") from error
        finally:
            bar.close()
        unchecked = f", unchecked {report.unchecked} (see the log)" if report.unchecked else ""
        self.stdout.write(
            f"checked {report.checked}, mismatches {report.found}, filed {report.filed} "
            f"(already filed {report.found - report.filed}){unchecked}"
        )
