"""``manage.py sync_customers --integration NAME [--since DATE] [--dry-run]``."""

from __future__ import annotations

from datetime import datetime, time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from tqdm import tqdm

from customers.backfill import customers_backfill
from integrations.kernel.exceptions import IntegrationError
from integrations.models import Integration


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = parse_datetime(value)
    if moment is None and (day := parse_date(value)):
        moment = datetime.combine(day, time.min)
    if moment is None:
        raise CommandError(f"--since {value!r} is no date (YYYY-MM-DD or an ISO date-time)")
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


def _total_set(bar: tqdm):
    def set_total(total: int) -> None:
        bar.total = total
        bar.refresh()

    return set_total


class Command(BaseCommand):
    help = (
        "Link every Znode user of an integration to its Stripe customer (found before "
        "created) and bring both in step. Resumable: an interrupted run goes on after "
        "the last user it finished. A second run changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--integration", required=True, help="The integration's name.")
        parser.add_argument("--since", help="Only users modified since this date.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Read both systems, write nothing."
        )
        parser.add_argument(
            "--restart", action="store_true", help="Start over instead of resuming."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options):
        integration = Integration.objects.filter(name=options["integration"]).first()
        if integration is None:
            raise CommandError(f"no integration named {options['integration']!r}")
        since = _since(options["since"])
        bar = tqdm(
            unit=" customers",
            desc="dry run" if options["dry_run"] else "customers",
            disable=options["no_progress"],
            file=self.stderr._out,
        )
        try:
            report = customers_backfill(
                integration=integration,
                since=since,
                dry_run=options["dry_run"],
                restart=options["restart"],
                progress=bar.update,
                total=_total_set(bar),
            )
        except IntegrationError as error:
            raise CommandError(
                f"stopped: {error}. Run the command again to resume after the last user done."
            ) from error
        finally:
            bar.close()
        if report.resumed_after:
            self.stdout.write(f"resumed after Znode user {report.resumed_after}")
        summary = ", ".join(f"{name.replace('_', ' ')} {n}" for name, n in report.counts.items())
        self.stdout.write(("dry run (nothing written): " if report.dry_run else "") + summary)
