"""``manage.py import_payouts --integration NAME [--since DATE] [--until DATE]
[--no-post]``."""

from __future__ import annotations

import contextlib
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date
from tqdm import tqdm

from integrations.connectors.stripe.mapping import payout_from_wire
from integrations.kernel.exceptions import IntegrationError, TransientError
from integrations.models import Integration
from integrations.runtime import ServiceContext
from reconciliation.choices import LedgerState, TieOut
from reconciliation.ledger import payout_ledger_post
from reconciliation.services import payout_import


def _day(value: str | None, option: str) -> date | None:
    if not value:
        return None
    day = parse_date(value)
    if day is None:
        raise CommandError(f"{option} {value!r} is no date (YYYY-MM-DD)")
    return day


def _timestamp(day: date) -> int:
    return int(datetime.combine(day, time.min, tzinfo=UTC).timestamp())


class Command(BaseCommand):
    help = (
        "Import the Stripe payouts of an integration that arrive at the bank between two "
        "dates (UTC, both included): each payout's balance transactions are stored, "
        "matched to their orders and tied out, and each payout's journal is posted to the "
        "ERP once it ties out (a failed or canceled one too, once its transactions add up "
        "to it). Oldest first, so that a manual payout's range follows the payouts before "
        "it. Running it again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--integration", required=True, help="The integration's name.")
        parser.add_argument("--since", help="First arrival date (YYYY-MM-DD); default: all.")
        parser.add_argument("--until", help="Last arrival date (YYYY-MM-DD); default: none.")
        parser.add_argument(
            "--no-post", action="store_true", help="Import and tie out only; post no journal."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options):
        integration = Integration.objects.filter(name=options["integration"]).first()
        if integration is None:
            raise CommandError(f"no integration named {options['integration']!r}")
        since = _day(options["since"], "--since")
        until = _day(options["until"], "--until")
        if since and until and until < since:
            raise CommandError("--until is before --since")
        ctx = ServiceContext(integration=integration)
        outcomes: Counter[str] = Counter()
        ledger: Counter[str] = Counter()
        transactions: Counter[str] = Counter()
        bar = tqdm(
            unit=" payouts", desc="payouts", disable=options["no_progress"], file=self.stderr._out
        )
        try:
            listed = ctx.client("stripe").payouts_list(
                arrival_gte=_timestamp(since) if since else None,
                arrival_lt=_timestamp(until + timedelta(days=1)) if until else None,
            )
            # Stripe lists the newest first; a payout's facts are small (one a day or so).
            facts = sorted((payout_from_wire(row) for row in listed), key=lambda f: f.created)
            bar.total = len(facts)
            for fact in facts:
                report = payout_import(ctx=ctx, payout_id=fact.id, fresh=fact)
                outcomes[report.payout.tie_out] += 1
                transactions["new"] += report.new
                transactions["known"] += report.known
                transactions["unexplained"] += report.payout.unexplained_count
                if not options["no_post"]:
                    # Waiting for an order's entry: the payout's state and note say which.
                    with contextlib.suppress(TransientError):
                        payout_ledger_post(ctx=ctx, payout=report.payout)
                    ledger[report.payout.ledger_state] += 1
                bar.update()
        except IntegrationError as error:
            raise CommandError(
                f"stopped: {error}. Run the command again: nothing doubles."
            ) from error
        finally:
            bar.close()
        states = ", ".join(f"{label} {outcomes[state]}" for state, label in TieOut.choices)
        self.stdout.write(
            f"payouts {sum(outcomes.values())}: {states}; transactions new "
            f"{transactions['new']}, known {transactions['known']}, unexplained "
            f"{transactions['unexplained']}"
        )
        if not options["no_post"]:
            self.stdout.write(
                "ledger: " + ", ".join(f"{label} {ledger[s]}" for s, label in LedgerState.choices)
            )
