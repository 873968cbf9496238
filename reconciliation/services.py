"""Writes for reconciliation: a Stripe payout imported with its balance transactions,
each matched to its order (:mod:`reconciliation.matching`), and the payout tied out.

Events are hints: the payout is read again from Stripe before anything is stored. Its
transactions are streamed from Stripe's auto-paging list and stored a batch at a time
(one upsert per batch, keyed by the ``txn_`` id), so a payout is never held in memory
whole and importing it again changes nothing. Totals are summed by the database.

A transaction already stored under another payout that Stripe now lists under this one
is moved, never silently: both payouts' notes say so, and the payout it left is tied
out again (as Stripe has it now) without it. A payout that failed or was canceled,
even after it was paid, is "not paid out"; the balance transaction that returned its
money (reporting category ``payout_reversal``) is explained in the payout that takes
the money to the bank again.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any, Protocol

from django.db import transaction
from django.utils import timezone

from integrations.connectors.stripe.mapping import (
    StripeBalanceTransaction,
    StripePayout,
    balance_transaction_from_wire,
    payout_from_wire,
    payout_schedule_from_wire,
)
from integrations.db import WriteBehind, bulk_upsert
from integrations.kernel import exceptions as exc
from integrations.models import Integration
from payments import money
from reconciliation import selectors
from reconciliation.choices import LedgerState, TieOut
from reconciliation.ledger import ledger_key_of
from reconciliation.matching import Match, category_of, transactions_match
from reconciliation.models import BalanceTransaction, Payout

BATCH = 500
"""Balance transactions matched and written together (five of Stripe's pages)."""

UNEXPLAINED_SHOWN = 5
"""Unexplained lines named in a payout's note (the admin page lists them all)."""

MOVED_SHOWN = 5
"""Moved transactions named in a payout's note line of a move."""

MOVES_KEPT = 10
"""Lines of moves a payout's note keeps (the latest), re-import after re-import."""

MOVED = "Moved: "
"""How a note's line of a move starts: kept when the note is written again."""

AVAILABILITY_LOOKBACK = 35 * 86400
"""How long before the previous payout a manual payout's transactions may have been
created (seconds). Stripe lists the balance history by creation only; what became
available after the previous payout was created at most a settlement period before it
(2 to 14 days as Stripe pays out; 35 leaves room for reserves and holidays)."""

_STORED = (
    "payout",
    "type",
    "reporting_category",
    "gross_minor",
    "fee_minor",
    "net_minor",
    "currency",
    "exchange_rate",
    "fee_details",
    "source_id",
    "source_type",
    "available_on",
    "created",
    "order",
    "matched_as",
    "explained",
    "unmatched_reason",
    "ledger_key",
)
"""What an import writes again over a transaction already stored."""

_BOOKED = ("order", "matched_as", "explained", "unmatched_reason", "ledger_key")
"""What a transaction was booked by: kept as it was once its payout's journal is
posted, so that the exports name what the ledger posted (a later change of matching
is no change of the books; the ledger's note says how to correct those)."""

_STORED_POSTED = tuple(name for name in _STORED if name not in _BOOKED)

_COLUMNS = ("integration", "stripe_txn_id", *_STORED)
"""What an import writes of a transaction (``_row``'s values, in this order)."""


class ImportContext(Protocol):
    """A job's :class:`~integrations.runtime.ActionContext`, or a run's outside any job
    (:class:`~integrations.runtime.ServiceContext`: the command)."""

    @property
    def integration(self) -> Integration | None: ...

    def client(self, kind: str) -> Any: ...


@dataclass(frozen=True)
class PayoutImport:
    payout: Payout
    new: int
    """Transactions stored for the first time."""
    known: int
    """Transactions already stored, written again (nothing doubles)."""
    skipped: int = 0
    """Manual payouts: transactions of the date range already part of another payout."""
    moved: int = 0
    """Transactions stored under another payout that Stripe now lists under this one."""

    def as_output(self) -> dict:
        payout = self.payout
        return {
            "payout": payout.stripe_payout_id,
            "tie_out": payout.tie_out,
            "discrepancy_minor": payout.discrepancy_minor,
            "currency": payout.currency,
            "transactions": payout.transaction_count,
            "unexplained": payout.unexplained_count,
            "new": self.new,
            "known": self.known,
            "skipped": self.skipped,
            "moved": self.moved,
        }


def _when(timestamp: int) -> datetime | None:
    return datetime.fromtimestamp(timestamp, tz=UTC) if timestamp else None


def _day(timestamp: int) -> str:
    moment = _when(timestamp)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "the beginning"


def _batches(
    txns: Iterable[StripeBalanceTransaction], size: int
) -> Iterator[list[StripeBalanceTransaction]]:
    txns = iter(txns)
    while chunk := list(islice(txns, size)):
        yield chunk


def payout_import(
    *, ctx: ImportContext, payout_id: str, fresh: StripePayout | None = None
) -> PayoutImport:
    """Import payout ``payout_id``: read it again from Stripe (``fresh``: a payout this
    run has just read, the backfill's list, is not read twice), store its balance
    transactions matched to their orders, and tie it out.

    An automatic payout is itemised by Stripe (``payout=``). A manual one cannot be
    (reference stripe.md A7). On an account that pays out manually, Stripe pays it out
    from the available balance, so its lines are the balance history of its currency
    that became available (``available_on``) after the previous payout up to this one's
    creation, as its note says. On an account with automatic payouts, a manual (or
    instant) one is drawn from the balance the next automatic payout reconciles: that
    payout lists its own row with the transactions it drew on, so nothing is stored for
    it here (its tie-out: in an automatic payout)."""
    integration = ctx.integration
    if integration is None:
        raise exc.ConnectorConfigurationError("a payout is imported for an integration")
    gateway = ctx.client("stripe")
    fact = fresh if fresh is not None else payout_from_wire(gateway.payout_retrieve(payout_id))
    if not fact.id:
        raise exc.DataError(f"Stripe returned no payout for {payout_id!r}")
    payout = _payout_upsert(integration, fact)
    if fact.automatic:
        # Read from the wire by the list's own reader, while a batch is matched here.
        rows = gateway.balance_transactions_for_payout(fact.id, parse=balance_transaction_from_wire)
        method = "Automatic payout: itemised by Stripe."
    elif payout.bundled:
        # Once bundled, always: the schedule read today says nothing of an old payout.
        method = _method_of(payout.note) or _bundled_method(fact, "so found when first imported")
        payout_tie_out(payout=payout, fact=fact, method=method)
        return PayoutImport(payout=payout, new=0, known=0)
    elif (schedule := _automatic_schedule(gateway, fact)) is not None:
        _save_changed(payout, {"bundled": True})
        payout_tie_out(payout=payout, fact=fact, method=_bundled_method(fact, schedule))
        return PayoutImport(payout=payout, new=0, known=0)
    else:
        since, previous = _previous_payout(gateway, fact)
        rows = gateway.balance_transactions_available(
            available_gt=since,
            available_lte=fact.created,
            created_gte=max(since - AVAILABILITY_LOOKBACK, 0) if since else 0,
            currency=fact.currency,
            parse=balance_transaction_from_wire,
        )
        method = (
            "Manual payout: Stripe cannot itemise it (reference stripe.md A7). Reconciled "
            f"from the balance history: the {fact.currency.upper()} transactions that "
            "became available "
            + (f"after the previous payout {previous} ({_day(since)}) " if previous else "")
            + f"up to this one's creation ({_day(fact.created)}), other payouts' rows left "
            "out. It ties out only if it paid out exactly that."
        )
    moves = _Moves()
    # Closed on the way out, an error included: a list read ahead stops reading then
    # and its requests are recorded here, not whenever the list is collected.
    with contextlib.closing(rows):
        new, known, skipped = _import_batches(integration, payout, fact, rows, gateway, moves)
    if skipped:
        method += f" {skipped} transactions of the range were already another payout's."
    left = Payout.objects.filter(pk__in=moves.count).order_by("pk")
    arrived = "; ".join(
        f"{_transactions(moves.count[row.pk])} ({moves.named(row.pk)}) came from payout "
        f"{row.stripe_payout_id}, where they were stored before"
        for row in left
    )
    moved = (
        f"{MOVED}{arrived}: Stripe now lists them under this payout ({_now()}); that "
        "payout was tied out again without them."
        if arrived
        else ""
    )
    payout_tie_out(payout=payout, fact=fact, method=method, moved=moved)
    for row in left:
        _payout_left(gateway, row, to=payout, count=moves.count[row.pk], named=moves.named(row.pk))
    return PayoutImport(
        payout=payout,
        new=new,
        known=known,
        skipped=skipped,
        moved=sum(moves.count.values()),
    )


def _import_batches(
    integration: Integration,
    payout: Payout,
    fact: StripePayout,
    rows: Iterator[StripeBalanceTransaction],
    gateway: Any,
    moves: _Moves,
) -> tuple[int, int, int]:
    """Match and store the listed transactions a batch at a time: (new, known, skipped).
    A batch is stored behind (:class:`WriteBehind`) while the next is matched."""
    counts = {"new": 0, "known": 0}

    def stored(result: tuple[int, dict[str, int]]) -> None:
        size, owners = result
        counts["new"] += size - len(owners)
        counts["known"] += len(owners)
        moves.add(payout.pk, owners)

    skipped = 0
    update = _STORED_POSTED if payout.ledger_state == LedgerState.POSTED else _STORED
    with WriteBehind(stored) as writer:
        for batch in _batches(rows, BATCH):
            if not fact.automatic:
                batch, left_out = _manual_lines(integration, payout, fact, batch)
                skipped += left_out
            if not batch:
                continue
            matches = transactions_match(
                integration=integration, payout_id=fact.id, txns=batch, gateway=gateway
            )
            rows_of = _rows(integration, payout, batch, matches)
            writer.submit(lambda rows_of=rows_of: (len(rows_of), _store(rows_of, update)))
    return counts["new"], counts["known"], skipped


class _Moves:
    """Transactions an import took from other payouts: how many from each, a few named."""

    def __init__(self) -> None:
        self.count: dict[int, int] = {}
        self.ids: dict[int, list[str]] = {}

    def add(self, payout_pk: int, owners: dict[str, int]) -> None:
        for txn_id, owner in owners.items():
            if owner == payout_pk:
                continue
            self.count[owner] = self.count.get(owner, 0) + 1
            named = self.ids.setdefault(owner, [])
            if len(named) < MOVED_SHOWN:
                named.append(txn_id)

    def named(self, payout_pk: int) -> str:
        more = self.count[payout_pk] - len(self.ids[payout_pk])
        return ", ".join(self.ids[payout_pk]) + (f" and {more} more" if more > 0 else "")


def _transactions(count: int) -> str:
    return f"{count} transaction" + ("" if count == 1 else "s")


def _now() -> str:
    return timezone.now().astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _payout_left(gateway: Any, payout: Payout, *, to: Payout, count: int, named: str) -> None:
    """Tie out again, as Stripe has it now, a payout some of whose transactions Stripe
    now lists under payout ``to``, and say so in its note."""
    fact = payout_from_wire(gateway.payout_retrieve(payout.stripe_payout_id))
    _payout_upsert(payout.integration, fact)
    posted = (
        " Its journal was posted with them and cleared them: the payout now holding them "
        "refuses to clear them again (its ledger note says which); reverse them in this "
        "payout's journal in the ERP before that payout is posted."
        if payout.ledger_state == LedgerState.POSTED
        else ""
    )
    moved = (
        f"{MOVED}{_transactions(count)} ({named}) of this payout are listed by Stripe under "
        f"payout {to.stripe_payout_id} now and were moved there ({_now()}); tied out again "
        f"without them.{posted}"
    )
    payout_tie_out(payout=payout, fact=fact, method=_method_of(payout.note), moved=moved)


def _method_of(note: str) -> str:
    """How a payout was reconciled, as its note says (its first line)."""
    first = note.partition("\n")[0]
    return first if first.startswith(("Automatic payout", "Manual payout")) else ""


def _payout_upsert(integration: Integration, fact: StripePayout) -> Payout:
    values = {
        "amount_minor": fact.amount,
        "currency": fact.currency.upper(),
        "status": fact.status,
        "automatic": fact.automatic,
        "arrival_date": _when(fact.arrival_date),
        "stripe_created": _when(fact.created),
    }
    payout, made = Payout.objects.get_or_create(
        integration=integration, stripe_payout_id=fact.id, defaults=values
    )
    if not made:
        _save_changed(payout, values)
    return payout


def _save_changed(payout: Payout, values: dict[str, Any]) -> None:
    """Save (and so record in its history) only what changed."""
    changed = [name for name, value in values.items() if getattr(payout, name) != value]
    for name in changed:
        setattr(payout, name, values[name])
    if changed:
        payout.save(update_fields=changed)


def _bundled_method(fact: StripePayout, schedule: str) -> str:
    return (
        f"Manual payout on an automatic payout schedule ({schedule}): Stripe pays it out "
        "of the balance its next automatic payout reconciles. That payout lists this "
        f"one's own row ({fact.balance_transaction or 'its balance transaction'}) with "
        "the transactions it drew on, and its journal books this payout's money to the "
        "bank; nothing is stored or posted for it here."
    )


def _automatic_schedule(gateway: Any, fact: StripePayout) -> str | None:
    """Why the account pays out automatically (for the note), or None: it pays out
    manually. Read from the account's payout schedule (``GET /v1/account``); where the
    key may not read the account or it does not say, the payout made before it tells
    (an account on a manual schedule makes no automatic payouts)."""
    try:
        interval = payout_schedule_from_wire(gateway.account_retrieve())
    except exc.PermanentError:
        interval = ""
    if interval:
        return None if interval == "manual" else f"the account's schedule is {interval}"
    for row in itertools.islice(gateway.payouts_list(created_lt=fact.created), 1):
        earlier = payout_from_wire(row)
        if earlier.automatic:
            return f"the payout before it, {earlier.id}, was automatic"
    return None


def _previous_payout(gateway: Any, fact: StripePayout) -> tuple[int, str]:
    """When the payout before ``fact`` in the same currency was created, and its id
    (0 and "": there is none). Failed and canceled payouts paid nothing out."""
    for row in gateway.payouts_list(created_lt=fact.created):
        earlier = payout_from_wire(row)
        if earlier.currency == fact.currency and earlier.paid_out:
            return earlier.created, earlier.id
    return 0, ""


def _manual_lines(
    integration: Integration,
    payout: Payout,
    fact: StripePayout,
    batch: list[StripeBalanceTransaction],
) -> tuple[list[StripeBalanceTransaction], int]:
    """The lines of a manual payout in a batch of its date range: not other payouts'
    own rows, not its own money back (a cancel or failure in the second it was made is
    in its range, and is the next payout's line), not transactions already reconciled
    with another payout."""
    owners = selectors.transaction_payouts(
        integration=integration, txn_ids=(txn.id for txn in batch)
    )
    kept = [
        txn
        for txn in batch
        if not (txn.type == "payout" and txn.source_id != fact.id)
        and not (category_of(txn) == "payout_reversal" and txn.source_id == fact.id)
        and owners.get(txn.id, payout.pk) == payout.pk
    ]
    return kept, len(batch) - len(kept)


def _row(
    integration: Integration, payout: Payout, txn: StripeBalanceTransaction, match: Match
) -> tuple:
    """The values of ``_COLUMNS`` for a transaction, its match given."""
    return (
        integration.pk,
        txn.id,
        payout.pk,
        txn.type,
        txn.reporting_category,
        txn.amount,
        txn.fee,
        txn.net,
        txn.currency.upper(),
        txn.exchange_rate,
        [
            {"type": kind, "amount": amount, "currency": currency.upper()}
            for kind, amount, currency in txn.fee_details
        ],
        txn.source_id,
        txn.source_type,
        _when(txn.available_on),
        _when(txn.created),
        match.order_id,
        match.matched_as,
        match.explained,
        match.reason,
        ledger_key_of(
            category=category_of(txn),
            matched_as=match.matched_as,
            txn_id=txn.id,
            source_id=txn.source_id,
            has_order=match.order_id is not None,
        ),
    )


def _rows(
    integration: Integration,
    payout: Payout,
    batch: list[StripeBalanceTransaction],
    matches: list[Match],
) -> list[tuple]:
    """A batch's rows of ``_COLUMNS``, one per ``txn_`` id (the last listed wins)."""
    pairs = zip(batch, matches, strict=True)
    return list({txn.id: _row(integration, payout, txn, match) for txn, match in pairs}.values())


def _store(rows: list[tuple], update: tuple[str, ...] = _STORED) -> dict[str, int]:
    """Upsert a batch's rows by ``txn_`` id (to this payout, where Stripe lists them),
    writing ``update`` over those stored; returns the payout (row id) each one already
    stored was stored under before."""
    with transaction.atomic():
        return bulk_upsert(
            BalanceTransaction,
            rows,
            fields=_COLUMNS,
            unique=("integration", "stripe_txn_id"),
            update=update,
            previous=("stripe_txn_id", "payout"),
        )


def payout_tie_out(
    *, payout: Payout, fact: StripePayout, method: str = "", moved: str = ""
) -> Payout:
    """Tie the payout out from its stored transactions: the nets of those matched to
    an order or explained must add up to the amount, and none may be unexplained.
    A payout that failed or was canceled is not paid out; Stripe's unfinished payouts
    (automatic, still being reconciled) stay pending. ``moved``: a line of
    transactions moved to or from it, kept in its note with the earlier ones. A
    bundled payout (:attr:`Payout.bundled`) is the automatic payout's to tie out."""
    totals = selectors.payout_totals(payout=payout)
    bundled = payout.bundled
    discrepancy = 0 if bundled else payout.amount_minor - totals.explained_net

    def shown(minor: int) -> str:
        try:
            return money.format_minor(minor, payout.currency)
        except money.MoneyError:
            return f"{minor} {payout.currency} (minor units)"

    if not bundled:
        lines = [
            method,
            f"{totals.lines} transactions net {shown(totals.net)}; the payout is "
            f"{shown(payout.amount_minor)}.",
        ]
    elif totals.count:
        lines = [
            method,
            f"{totals.count} transactions stored under it before are the automatic "
            "payout's: they move there when it is imported.",
        ]
    else:
        lines = [method]
    if not fact.paid_out:
        state = TieOut.NOT_PAID_OUT
        lines.append(_not_paid_out(payout, fact))
    elif bundled:
        state = TieOut.IN_AUTOMATIC
    elif fact.automatic and not fact.settled:
        state = TieOut.PENDING
        lines.append(
            f"Stripe is still adding transactions to it ({fact.status}, reconciliation "
            f"{fact.reconciliation_status or 'not started'}): it is imported again on "
            "payout.reconciliation_completed and payout.paid."
        )
    elif discrepancy == 0 and totals.unexplained == 0:
        state = TieOut.TIED_OUT
        lines.append("Tied out: every transaction is matched to an order or explained.")
    else:
        state = TieOut.DISCREPANCY
        lines.append(f"Discrepancy: {shown(discrepancy)} is not accounted for.")
    if totals.unexplained:
        named = "; ".join(
            f"{txn.stripe_txn_id} net {shown(txn.net_minor)}: {txn.unmatched_reason}"
            for txn in selectors.payout_unexplained(payout=payout, limit=UNEXPLAINED_SHOWN)
        )
        more = totals.unexplained - UNEXPLAINED_SHOWN
        lines.append(
            f"{totals.unexplained} unexplained, net {shown(totals.unexplained_net)}: {named}"
            + (f"; and {more} more" if more > 0 else "")
        )
    moves = [line for line in payout.note.splitlines() if line.startswith(MOVED)]
    if moved and moved not in moves:
        moves.append(moved)
    lines.extend(moves[-MOVES_KEPT:])
    _save_changed(
        payout,
        {
            "tie_out": state,
            "discrepancy_minor": discrepancy,
            "transactions_net_minor": totals.net,
            "transaction_count": totals.count,
            "unexplained_count": totals.unexplained,
            "note": "\n".join(line for line in lines if line),
        },
    )
    # When it was last imported is no change of the payout's: kept out of its history.
    payout.imported_at = timezone.now()
    Payout.objects.filter(pk=payout.pk).update(imported_at=payout.imported_at)
    return payout


def _not_paid_out(payout: Payout, fact: StripePayout) -> str:
    """Why a failed or canceled payout is not paid out, and where its money went."""
    why = f" ({fact.failure_code}: {fact.failure_message})" if fact.failure_code else ""
    what = "was canceled" if fact.status == "canceled" else fact.status
    line = f"Not paid out: Stripe says the payout {what}{why}; nothing reached the bank."
    reversal = selectors.payout_reversal(
        integration=payout.integration,
        payout_id=payout.stripe_payout_id,
        txn_id=fact.failure_balance_transaction,
    )
    txn_id = reversal.stripe_txn_id if reversal else fact.failure_balance_transaction
    if reversal is not None:
        line += (
            f" Its money came back to the balance by {txn_id} (payout_reversal), explained "
            f"in payout {reversal.payout.stripe_payout_id}, which took it to the bank again."
        )
    elif txn_id:
        line += (
            f" Its money came back to the balance by {txn_id} (payout_reversal): it is "
            "explained in the payout that takes it to the bank again."
        )
    if payout.bundled:
        return line + (
            " Its own row and the money's return are booked by the automatic payouts that "
            "list them: nothing is posted for it here."
        )
    line += (
        " Its journal is posted as a paid payout's (its orders' money off clearing, "
        "Stripe's fees expensed) once its transactions add up to it; the money's return is "
        "booked back from the bank by the payout that holds its payout_reversal."
    )
    return line
