"""The ledger, by the clearing-account method (reference stripe.md A7, "Accounting
pattern"): what the platform books, how, and the GL map that names the accounts.

Order-to-cash puts each order's money on the Stripe clearing account as it moves: the
sale debits clearing (credits sales), a refund's credit memo credits it, a dispute's
movement credits (or debits) it net of its fee. Each payout then empties it: its
journal credits clearing with what those entries put there for its transactions,
expenses Stripe's fees by ``fee_details`` type, books the account's own movements
(Stripe's fees, adjustments, ...) by reporting category, and debits the bank with the
payout. Where Stripe settled in another currency than the order's, the payout's side
goes through the FX account, and a conversion entry in the order's currency empties
that currency's clearing. So the clearing account nets to zero per payout, which the
payout's proof shows from the rows posted.

Every entry is checked to balance to the cent (in minor units: integers) before it is
stored or sent, kept as posted (:class:`~reconciliation.models.JournalEntry`), and
posted to the ERP under its external reference, its idempotency key there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, Sum, Value
from django.db.models.functions import Concat
from django.utils import timezone

from integrations.connectors.erp.mapping import CreditMemo, document_from_wire
from integrations.connectors.erp.mapping import JournalEntry as ErpEntry
from integrations.connectors.erp.mapping import JournalLine as ErpLine
from integrations.connectors.stripe.mapping import fee_details_from_wire
from integrations.kernel import exceptions as exc
from integrations.models import Integration
from integrations.runtime import ActionContext
from payments import money
from payments.choices import RefundStatus
from payments.models import Order, Payment, Refund
from reconciliation.choices import Document, EntryKind, LedgerState, MatchedAs, TieOut
from reconciliation.matching import category_of
from reconciliation.models import BalanceTransaction, GlAccount, JournalEntry, JournalLine, Payout
from reconciliation.references import sale_reference

# --- the GL map ------------------------------------------------------------------------
DEFAULT_GL_ACCOUNTS: Mapping[str, str] = {
    "clearing": "1150",
    "bank": "1010",
    "charge": "4000",
    "refund": "4100",
    "dispute": "4910",
    "dispute_fee": "6120",
    "fee": "6100",
    "fee:tax": "6110",
    "fx": "7950",
    "rounding": "7990",
    "other": "1190",
}
"""The accounts of a key no row of the map names (the migration ships these as rows,
which finance edits)."""

FALLBACK: Mapping[str, str] = {
    "charge_failure": "charge",
    "partial_capture_reversal": "charge",
    "refund_failure": "refund",
    "dispute_reversal": "dispute",
    "payout": "bank",
    "payout_reversal": "bank",
    "network_cost": "fee",
    "tax": "fee:tax",
    "fee:withheld_tax": "fee:tax",
}
"""A key without an account of its own posts to this one's; a fee type (``fee:…``)
falls back to ``fee``, any other key to ``other``."""


def _fallbacks(key: str) -> Iterator[str]:
    seen = set()
    while key and key not in seen:
        seen.add(key)
        yield key
        key = FALLBACK.get(key) or ("fee" if key.startswith("fee:") else "other")


class GlMap:
    """The GL map of an integration, read once: rows of the integration for the
    currency, then for every currency, then the rows for every integration (same
    order), then :data:`DEFAULT_GL_ACCOUNTS`; each key falls back as :data:`FALLBACK`
    says until one names an account."""

    def __init__(self, rows: Iterable[GlAccount]) -> None:
        self._rows: dict[tuple[bool, str, str], str] = {}
        for row in rows:
            self._rows[(row.integration_id is not None, row.key, row.currency.upper())] = (
                row.account
            )

    def account(self, key: str, currency: str) -> str:
        currency = currency.upper()
        for candidate in _fallbacks(key):
            for own, cur in ((True, currency), (True, ""), (False, currency), (False, "")):
                found = self._rows.get((own, candidate, cur))
                if found:
                    return found
            if candidate in DEFAULT_GL_ACCOUNTS:
                return DEFAULT_GL_ACCOUNTS[candidate]
        return DEFAULT_GL_ACCOUNTS["other"]

    def posting(self, key: str, signed_minor: int, currency: str, description: str) -> Posting:
        return Posting(key, self.account(key, currency), signed_minor, description)


def gl_map(integration: Integration | None) -> GlMap:
    rows = GlAccount.objects.filter(Q(integration__isnull=True) | Q(integration=integration))
    return GlMap(rows)


# --- entries -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Posting:
    """A line: ``signed_minor`` is the debit (positive) or the credit (negative) in minor
    units of the entry's currency; ``key`` is the GL map's key it is posted under."""

    key: str
    account: str
    signed_minor: int
    description: str = ""


@dataclass(frozen=True)
class Entry:
    """A journal as the ledger books it, before it is posted."""

    reference: str
    kind: str
    day: date
    currency: str
    memo: str
    postings: tuple[Posting, ...]
    ledger_key: str = ""
    credit_memo_customer: str = ""
    """Set for a credit memo (the document a refund is posted as): its customer."""
    credit_memo_amount: int = 0
    order: Order | None = field(default=None, compare=False)
    payout: Payout | None = field(default=None, compare=False)

    @property
    def document(self) -> str:
        return Document.CREDIT_MEMO if self.credit_memo_customer else Document.JOURNAL_ENTRY

    def lines(self) -> list[Posting]:
        return [p for p in self.postings if p.signed_minor]

    def check_balanced(self) -> None:
        """Refuse an entry that does not balance to the cent (minor units: exact)."""
        lines = self.lines()
        if len(lines) < 2:
            raise exc.DataError(f"journal {self.reference}: an entry needs two lines or more")
        total = sum(p.signed_minor for p in lines)
        if total:
            raise exc.DataError(
                f"journal {self.reference} does not balance: debits exceed credits by "
                f"{money.format_minor(total, self.currency)}; it is not posted"
            )

    def total_minor(self) -> int:
        return sum(p.signed_minor for p in self.lines() if p.signed_minor > 0)


def _erp_line(posting: Posting, currency: str) -> ErpLine:
    amount = money.from_minor_units(abs(posting.signed_minor), currency)
    if posting.signed_minor > 0:
        return ErpLine(account=posting.account, debit=amount, description=posting.description)
    return ErpLine(account=posting.account, credit=amount, description=posting.description)


def erp_document(entry: Entry) -> ErpEntry | CreditMemo:
    """The ERP's document of an entry (balanced, or DataError)."""
    entry.check_balanced()
    lines = tuple(_erp_line(p, entry.currency) for p in entry.lines())
    if entry.credit_memo_customer:
        return CreditMemo(
            external_reference=entry.reference,
            customer_reference=entry.credit_memo_customer,
            date=entry.day,
            currency=entry.currency,
            amount=money.from_minor_units(entry.credit_memo_amount, entry.currency),
            memo=entry.memo,
            lines=lines,
        )
    return ErpEntry(
        external_reference=entry.reference,
        date=entry.day,
        currency=entry.currency,
        memo=entry.memo,
        lines=lines,
    )


def _record(integration: Integration, entry: Entry) -> JournalEntry:
    """Our row of the entry, its lines as they are now (an entry not yet accepted by
    the ERP is recorded again as built; an accepted one is kept)."""
    values = {
        "kind": entry.kind,
        "document": entry.document,
        "ledger_key": entry.ledger_key,
        "date": entry.day,
        "currency": entry.currency.upper(),
        "memo": entry.memo[:500],
        "order": entry.order,
        "payout": entry.payout,
        "total": money.from_minor_units(entry.total_minor(), entry.currency),
    }
    with transaction.atomic():
        row = (
            JournalEntry.objects.select_for_update()
            .filter(integration=integration, external_reference=entry.reference)
            .first()
        )
        if row is not None and row.posted_at is not None:
            return row
        if row is None:
            try:
                with transaction.atomic():
                    row = JournalEntry.objects.create(
                        integration=integration, external_reference=entry.reference, **values
                    )
            except IntegrityError:
                return JournalEntry.objects.get(
                    integration=integration, external_reference=entry.reference
                )
        else:
            JournalEntry.objects.filter(pk=row.pk).update(**values)
            row.lines.all().delete()
        JournalLine.objects.bulk_create(
            JournalLine(
                entry=row,
                position=position,
                key=p.key,
                account=p.account,
                debit=money.from_minor_units(max(p.signed_minor, 0), entry.currency),
                credit=money.from_minor_units(max(-p.signed_minor, 0), entry.currency),
                signed_minor=p.signed_minor,
                description=p.description[:500],
            )
            for position, p in enumerate(entry.lines(), start=1)
        )
    return row


def entry_post(ctx: Any, entry: Entry) -> str:
    """Check, keep and post one entry; the ERP's document id. The ERP is asked every
    time (it holds one document per reference, so a repeat is harmless and a document
    it lost is written again); our row records the first answer."""
    document = erp_document(entry)
    integration = ctx.integration
    row = _record(integration, entry)
    erp = ctx.client("erp")
    if isinstance(document, CreditMemo):
        answer = erp.credit_memo_post(memo=document)
    else:
        answer = erp.journal_entry_post(entry=document)
    posted = document_from_wire(answer)
    if row.posted_at is None or row.erp_document_id != posted.id:
        JournalEntry.objects.filter(pk=row.pk).update(
            erp_document_id=posted.id, posted_at=row.posted_at or timezone.now()
        )
    return posted.id


# --- an order's entries ----------------------------------------------------------------------
def sale_entry(
    ctx: ActionContext,
    order: Order,
    *,
    charge: str,
    amount_received: int,
    payment: Payment | None = None,
) -> Entry:
    """The sales journal entry of a payment: the Stripe clearing account debited with
    what Stripe took, sales credited with the order's amount, keyed by the charge.

    Dated when the money came in (``paid_at``, stamped once), so whichever job posts
    it, and a retry after midnight, sends the same entry (the ERP refuses a second,
    different one under the same reference). Payments from before that stamp take
    the event's time."""
    gl = gl_map(ctx.integration)
    currency = order.currency
    received = amount_received or order.amount_minor
    when = payment.paid_at if payment is not None and payment.paid_at else None
    if when is None:
        when = ctx.event.occurred_at if ctx.event and ctx.event.occurred_at else timezone.now()
    postings = [gl.posting("clearing", received, currency, f"Stripe {charge}")]
    sale = money.ledger_minor_units(order.total, currency)
    rounding = received - sale
    if rounding and abs(rounding) < money.ledger_minor_units(
        money.rounding_step(currency), currency
    ):
        # Stripe charges three-decimal currencies in steps of ten (5.125 KWD is charged
        # 5.130): the sale stays the order's, the difference is a rounding line.
        postings.append(gl.posting("charge", -sale, currency, f"Order {order.order_number}"))
        postings.append(
            gl.posting(
                "rounding",
                -rounding,
                currency,
                f"Rounding of order {order.order_number} to Stripe's amount",
            )
        )
    else:
        postings.append(gl.posting("charge", -received, currency, f"Order {order.order_number}"))
    return Entry(
        reference=sale_reference(charge),
        kind=EntryKind.SALE,
        day=when.date(),
        currency=currency,
        memo=f"Stripe payment for order {order.order_number}",
        postings=tuple(postings),
        ledger_key=charge,
        order=order,
    )


def sale_post(ctx: ActionContext, order: Order, *, charge: str, amount_received: int) -> dict:
    """Post the sale once per payment (the ERP keys it by the charge as well)."""
    from payments.selectors import payment_by_charge

    payment = payment_by_charge(order, charge)
    if payment is not None and payment.refund_id:
        return {"skipped": f"refunded ({payment.refund_id}): no sale"}
    if payment is not None and payment.erp_booked_at:
        return {"skipped": "posted to the ERP already"}
    entry = sale_entry(ctx, order, charge=charge, amount_received=amount_received, payment=payment)
    document = entry_post(ctx, entry)
    if payment is not None:
        Payment.objects.filter(pk=payment.pk).update(erp_booked_at=timezone.now())
    return {
        "journal_entry": document,
        "amount": str(money.from_minor_units(entry.postings[0].signed_minor, order.currency)),
    }


# --- how a balance transaction finds the order entry that booked its money -------------------
_LINKED_BY_SOURCE = {"charge": "", "refund": "", "refund_failure": "refund_failure:"}
_LINKED_BY_TXN = ("dispute", "dispute_reversal")


def ledger_key_of(
    *, category: str, matched_as: str, txn_id: str, source_id: str, has_order: bool
) -> str:
    """The ledger key of the order-to-cash entry that put a balance transaction's money
    on the clearing account ("" when none did): the charge for a sale, the refund for
    its credit memo, ``refund_failure:`` and the refund for a failed refund's reversal,
    the movement itself (a ``txn_``) for a dispute's."""
    if not has_order or matched_as not in (MatchedAs.CHARGE, MatchedAs.REFUND, MatchedAs.DISPUTE):
        return ""
    if category in _LINKED_BY_SOURCE:
        return _LINKED_BY_SOURCE[category] + source_id if source_id else ""
    if category in _LINKED_BY_TXN:
        return txn_id
    return ""


# --- a payout's journal ------------------------------------------------------------------------
CHUNK = 500
"""Balance transactions read together while a payout's journal is built."""

SHOWN = 5
"""Transactions named in a payout's ledger note (the admin page lists them all)."""

_FEE_CATEGORIES = {"fee": "fee", "tax": "fee:tax", "network_cost": "network_cost"}

_FIELDS = (
    "id",
    "stripe_txn_id",
    "type",
    "reporting_category",
    "source_type",
    "source_id",
    "gross_minor",
    "fee_minor",
    "net_minor",
    "fee_details",
    "exchange_rate",
    "matched_as",
    "explained",
    "ledger_key",
    "cleared_by",
)


def _fee_postings(txn: BalanceTransaction) -> Iterator[tuple[str, int]]:
    """Stripe's fee of a transaction as expense, by ``fee_details`` type (what the
    details do not cover: plain ``fee``)."""
    detailed = 0
    for kind, amount, _currency in fee_details_from_wire(txn.fee_details):
        if amount:
            detailed += amount
            yield f"fee:{kind or 'stripe_fee'}", amount
    if txn.fee_minor - detailed:
        yield "fee", txn.fee_minor - detailed


def _payout_key(category: str) -> str:
    """The key of a payout's money: ``payout`` for its own row, another payout's row it
    lists and a failed or canceled payout's money back (``payout_reversal``) alike, so
    that a payout's deposit and its return net on the same account whatever the GL map
    says; else the bank."""
    return "payout" if category in ("payout", "payout_reversal") else "bank"


def _own_key(category: str) -> str:
    """The key of the account's own money (no order's): by its reporting category,
    Stripe's fees and tax on them to expense."""
    return _FEE_CATEGORIES.get(category, category or "other")


def transaction_keys(txn: BalanceTransaction, unbooked: Container[str] = frozenset()) -> list[str]:
    """The GL map's keys a balance transaction posts under in its payout's journal
    (and, for an order's money, the order entry's clearing before it). ``unbooked``:
    the payout's keys no order entry will ever hold (:func:`never_booked`), whose
    money the journal books to its own category."""
    category = category_of(txn)
    if txn.matched_as == MatchedAs.PAYOUT:
        keys = [_payout_key(category)]
    elif txn.ledger_key and txn.ledger_key in unbooked:
        keys = [category]
    elif txn.ledger_key:
        # Stripe books a dispute in the settlement currency, so does its entry; a sale
        # or refund of a converted charge is in the order's currency: through FX. What
        # moves nothing (a dispute's movement netting to zero) posts under no key.
        dispute = txn.matched_as == MatchedAs.DISPUTE
        converted = txn.exchange_rate is not None and not dispute
        keys = ["fx" if converted else "clearing"] if txn.net_minor or not dispute else []
    else:
        keys = [_own_key(category)]
    if txn.matched_as != MatchedAs.DISPUTE:
        keys += [key for key, _ in _fee_postings(txn)]
    return keys


def transaction_accounts(
    gl: GlMap, txn: BalanceTransaction, unbooked: Container[str] = frozenset()
) -> list[str]:
    """The GL accounts a balance transaction moves: ``account (key)`` per line."""
    accounts = []
    for key in transaction_keys(txn, unbooked):
        shown = f"{gl.account(key, txn.currency)} ({key})"
        if shown not in accounts:
            accounts.append(shown)
    return accounts


@dataclass
class _Linked:
    """The clearing line of the order entry a transaction's money was booked by."""

    currency: str
    signed_minor: int
    posted: bool


@dataclass
class PayoutJournal:
    """What a payout's journal is, as built from its stored transactions."""

    sums: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    """(key, description) → signed minor units (balance effect: money into the Stripe
    balance positive), in the payout's currency."""
    conversions: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Presentment currency → the clearing its order entries hold for the payout's
    converted transactions (debit positive)."""
    waiting: list[str] = field(default_factory=list)
    waiting_count: int = 0
    mismatched: list[str] = field(default_factory=list)
    mismatch_minor: int = 0
    mismatch_count: int = 0
    unexplained: int = 0
    cleared_elsewhere: int = 0
    elsewhere: list[str] = field(default_factory=list)
    """Transactions another payout's posted journal cleared already (moved here)."""
    returns_refused: list[str] = field(default_factory=list)
    """Money back from failed or canceled payouts whose journal was refused (the first
    few)."""

    def wait(self, what: str) -> None:
        """One more transaction the journal waits for; the first few are named."""
        self.waiting_count += 1
        if len(self.waiting) < SHOWN:
            self.waiting.append(what)


def _linked_clearing(integration: Integration | int, keys: list[str]) -> dict[str, _Linked]:
    rows = (
        JournalLine.objects.filter(
            key="clearing", entry__integration=integration, entry__ledger_key__in=keys
        )
        .values_list("entry__ledger_key", "entry__currency", "entry__posted_at")
        .annotate(total=Sum("signed_minor"))
    )
    return {key: _Linked(cur, total, posted is not None) for key, cur, posted, total in rows}


def _payout_keys(payout: Payout):
    """The ledger keys of a payout's transactions, as a subquery."""
    return (
        BalanceTransaction.objects.filter(payout=payout).exclude(ledger_key="").values("ledger_key")
    )


def never_booked(payout: Payout) -> dict[str, str]:
    """Keys of the payout's order money that order-to-cash books no entry for, and why
    (used only where no entry holds the key): a payment refunded in full before its
    sale was posted (no sale, no credit memo), its charge and its refunds; a refund
    that failed before it went through (no credit memo, so no reversal), and its
    failure. Rare, so one query each for the whole payout."""
    keys = _payout_keys(payout)
    unbooked = Payment.objects.filter(
        order__integration_id=payout.integration_id, erp_booked_at__isnull=True
    ).exclude(refund_id="")
    found = dict.fromkeys(
        unbooked.filter(charge_id__in=keys).values_list("charge_id", flat=True),
        "refunded before booked",
    )
    refunds = Refund.objects.filter(stripe_refund_id__in=keys, payment__in=unbooked)
    found.update(
        dict.fromkeys(refunds.values_list("stripe_refund_id", flat=True), "refunded before booked")
    )
    failed_uncredited = (
        Refund.objects.filter(
            order__integration_id=payout.integration_id,
            status__in=(RefundStatus.FAILED, RefundStatus.CANCELED),
            erp_booked_at__isnull=True,
        )
        .annotate(failure_key=Concat(Value("refund_failure:"), "stripe_refund_id"))
        .filter(Q(stripe_refund_id__in=keys) | Q(failure_key__in=keys))
        .values_list("stripe_refund_id", flat=True)
    )
    for refund in failed_uncredited:
        why = "the refund failed before it was credited"
        found[refund] = found[f"refund_failure:{refund}"] = why
    return found


def unbooked_keys(payout: Payout) -> dict[str, str]:
    """The payout's keys its journal books to their own accounts: never booked by
    order-to-cash (:func:`never_booked`) and held by no entry's clearing line, as
    :func:`payout_journal` decides it (what the exports name)."""
    unbooked = never_booked(payout)
    if not unbooked:
        return unbooked
    held = _linked_clearing(payout.integration_id, list(unbooked))
    return {key: why for key, why in unbooked.items() if key not in held}


def _chunks(payout: Payout) -> Iterator[list[BalanceTransaction]]:
    chunk: list[BalanceTransaction] = []
    rows = BalanceTransaction.objects.filter(payout=payout).only(*_FIELDS).order_by("id")
    for txn in rows.iterator(chunk_size=CHUNK):
        chunk.append(txn)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def payout_journal(payout: Payout) -> PayoutJournal:
    """Build the payout's journal from its stored transactions, streamed a chunk at a
    time (the sums are per key, never per transaction: bounded memory).

    Each transaction's balance effect goes to one key: an order's money to clearing
    (what its order entry put there: the gross of a sale or refund, the net of a
    dispute, whose entry booked the fee), through FX when the entry is in another
    currency; the account's own movements to their category; the payout to the bank.
    Stripe's fees on an order's charge or refund go to expense by type."""
    journal = PayoutJournal()
    integration = payout.integration
    currency = payout.currency.upper()
    unbooked = never_booked(payout)
    own = set(payout.journal_entries.values_list("pk", flat=True))
    for chunk in _chunks(payout):
        keys = [t.ledger_key for t in chunk if t.ledger_key]
        linked = _linked_clearing(integration, keys) if keys else {}
        returned = _returned_from(integration, chunk)
        for txn in chunk:
            _add(journal, txn, currency, linked, unbooked, own, returned)
    return journal


_BOOKED, _REFUSED = "booked", "refused"


def _returned_from(integration: Integration, chunk: list[BalanceTransaction]) -> dict[str, str]:
    """For the failed or canceled payouts whose money back (``payout_reversal``) the
    chunk holds: whether that payout's deposit is booked (its journal posted, or it is
    bundled into an automatic payout that books it), refused, or neither yet (absent)."""
    sources = {
        t.source_id
        for t in chunk
        if t.matched_as == MatchedAs.PAYOUT and category_of(t) == "payout_reversal" and t.source_id
    }
    if not sources:
        return {}
    states = {}
    for payout_id, bundled, state in Payout.objects.filter(
        integration=integration, stripe_payout_id__in=sources
    ).values_list("stripe_payout_id", "bundled", "ledger_state"):
        if bundled or state == LedgerState.POSTED:
            states[payout_id] = _BOOKED
        elif state == LedgerState.REFUSED:
            states[payout_id] = _REFUSED
    return states


def _add(
    journal: PayoutJournal,
    txn: BalanceTransaction,
    currency: str,
    linked: dict[str, _Linked],
    unbooked: Mapping[str, str],
    own: set[int],
    returned: Mapping[str, str],
) -> None:
    category = category_of(txn)
    sums = journal.sums
    if txn.matched_as == MatchedAs.PAYOUT:
        if category == "payout_reversal" and txn.source_id:
            # The money back of a payout whose deposit this credits: only once that
            # deposit is booked, else the bank is credited for a debit never made.
            state = returned.get(txn.source_id)
            if state is None:
                journal.wait(
                    f"{txn.stripe_txn_id} (the money back of payout {txn.source_id}, "
                    "whose journal is not posted)"
                )
                return
            if state == _REFUSED:
                if len(journal.returns_refused) < SHOWN:
                    journal.returns_refused.append(f"{txn.stripe_txn_id} ({txn.source_id})")
                return
        key = _payout_key(category)
        what = "Payout returned" if category == "payout_reversal" else "Payout to the bank"
        sums[(key, what)] += txn.net_minor
        return
    if not txn.explained:
        journal.unexplained += 1
        return
    if txn.cleared_by_id is not None and txn.cleared_by_id not in own:
        journal.cleared_elsewhere += 1
        if len(journal.elsewhere) < SHOWN:
            journal.elsewhere.append(txn.stripe_txn_id)
        return
    fees_here = txn.matched_as != MatchedAs.DISPUTE
    entry = linked.get(txn.ledger_key) if txn.ledger_key else None
    if txn.ledger_key and entry is None and txn.ledger_key in unbooked:
        # No order entry will ever hold it: its own account, from here.
        sums[(category, f"Stripe {category} (no order entry: {unbooked[txn.ledger_key]})")] += (
            txn.gross_minor
        )
    elif txn.ledger_key:
        expected = txn.gross_minor if fees_here else txn.net_minor
        if entry is None and expected == 0 and not fees_here:
            # A dispute's movement whose fee equals its amount moves nothing through
            # clearing: its entry (netted from this very movement) keeps no clearing
            # line, a zero line not being kept, so there is none to wait for or clear.
            pass
        elif entry is None or not entry.posted:
            journal.wait(f"{txn.stripe_txn_id} ({txn.ledger_key})")
            return
        elif entry.currency.upper() != currency:
            sums[("fx", f"Stripe {category} settled from {entry.currency}")] += expected
            journal.conversions[entry.currency.upper()] += entry.signed_minor
        else:
            if entry.signed_minor != expected:
                journal.mismatch_count += 1
                journal.mismatch_minor += entry.signed_minor - expected
                if len(journal.mismatched) < SHOWN:
                    journal.mismatched.append(
                        f"{txn.stripe_txn_id}: Stripe {expected}, the entry of "
                        f"{txn.ledger_key} {entry.signed_minor} (minor units)"
                    )
            sums[("clearing", f"Stripe {category}")] += expected
    else:
        sums[(_own_key(category), f"Stripe {category or txn.type}")] += txn.gross_minor
    if fees_here:
        for key, amount in _fee_postings(txn):
            sums[(key, "Stripe fees")] -= amount


def _postings(gl: GlMap, sums: Mapping[tuple[str, str], int], currency: str) -> tuple:
    """Lines from balance effects: money into the Stripe balance is credited to where
    it came from, money out debited to where it went."""
    merged: dict[tuple[str, str, str], int] = defaultdict(int)
    for (key, description), effect in sums.items():
        merged[(key, gl.account(key, currency), description)] -= effect
    return tuple(
        Posting(key, account, signed, description)
        for (key, account, description), signed in sorted(merged.items())
        if signed
    )


def payout_entries(gl: GlMap, payout: Payout, journal: PayoutJournal) -> list[Entry]:
    """The payout's entries: its deposit in its currency, and one conversion entry per
    presentment currency its converted transactions' order entries are in."""
    currency = payout.currency.upper()
    day = (payout.arrival_date or payout.stripe_created or timezone.now()).date()
    entries = []
    for presentment, held in sorted(journal.conversions.items()):
        if not held:
            continue
        entries.append(
            Entry(
                reference=f"payout:{payout.stripe_payout_id}:fx:{presentment}",
                kind=EntryKind.FX,
                day=day,
                currency=presentment,
                memo=f"Stripe payout {payout.stripe_payout_id}: {presentment} sales settled "
                f"in {currency}",
                postings=(
                    gl.posting("clearing", -held, presentment, f"Settled in {currency}"),
                    gl.posting("fx", held, presentment, f"Converted to {currency}"),
                ),
                payout=payout,
            )
        )
    entries.append(
        Entry(
            reference=f"payout:{payout.stripe_payout_id}",
            kind=EntryKind.PAYOUT,
            day=day,
            currency=currency,
            memo=f"Stripe payout {payout.stripe_payout_id}",
            postings=_postings(gl, journal.sums, currency),
            payout=payout,
        )
    )
    return entries


def _ledger_set(payout: Payout, state: str, note: str, **more: Any) -> None:
    values = {"ledger_state": state, "ledger_note": note, **more}
    changed = [k for k, v in values.items() if getattr(payout, k) != v]
    for k in changed:
        setattr(payout, k, values[k])
    if changed:
        payout.save(update_fields=changed)


def payout_postable(payout: Payout) -> bool:
    """Whether the payout's journal may be posted: it is tied out, or it failed or was
    canceled with transactions that add up to it (none unexplained). Such a payout's
    journal is posted as a paid one's: its orders' money leaves clearing and Stripe's
    fees are expensed, and the bank side is booked back by the payout that holds its
    payout_reversal (the money's return). Left unposted, that reversal would credit
    the bank for a debit never made and its orders' money would stay on clearing."""
    if payout.bundled:
        return False
    if payout.tie_out == TieOut.TIED_OUT:
        return True
    return (
        payout.tie_out == TieOut.NOT_PAID_OUT
        and payout.transaction_count > 0
        and payout.discrepancy_minor == 0
        and payout.unexplained_count == 0
    )


def payout_ledger_post(*, ctx: Any, payout: Payout) -> dict:
    """Post a tied-out payout's journal to the ERP, once, the payout's row locked while
    it is built and posted (the import of the same payout waits): never one that does
    not balance, would not leave every clearing account at zero for it, or clears a
    transaction another payout's journal cleared; one that waits for an order's entry
    raises :class:`~integrations.kernel.exceptions.ConflictRetry` (the job tries
    again later). A refusal is the ledger's (its state and note); the tie-out stays
    Stripe's."""
    if ctx.integration is None or ctx.integration.erp_id is None:
        return {"skipped": "no ERP"}
    with transaction.atomic():
        locked = Payout.objects.select_for_update().get(pk=payout.pk)
        outcome = _post_locked(ctx, locked)
    payout.refresh_from_db()
    if "waiting" in outcome:
        raise exc.ConflictRetry(f"payout {payout}: {outcome['waiting']}")
    return outcome


def _post_locked(ctx: Any, payout: Payout) -> dict:
    if payout.ledger_state == LedgerState.POSTED:
        return {"skipped": "posted already", "ledger": payout.ledger_state}
    if not payout_postable(payout):
        if payout.bundled:
            why = (
                f"{payout.get_tie_out_display()}: the journals of the automatic payouts that "
                "list its own row (and its money's return) book its money."
            )
        elif payout.tie_out == TieOut.NOT_PAID_OUT and not payout.transaction_count:
            why = "not paid out and holds no transactions."
        elif payout.tie_out == TieOut.NOT_PAID_OUT:
            why = "not paid out and its transactions do not add up to it."
        else:
            why = f"{payout.get_tie_out_display()}."
        _ledger_set(payout, LedgerState.NOT_POSTED, f"Not posted: the payout is {why}")
        return {"skipped": f"payout {payout.tie_out}"}
    journal = payout_journal(payout)
    shown = money.format_minor
    cur = payout.currency
    if journal.waiting_count:
        more = journal.waiting_count - len(journal.waiting)
        note = (
            f"Waiting: {journal.waiting_count} transactions' order entries are not posted "
            f"yet: {', '.join(journal.waiting)}" + (f" and {more} more" if more > 0 else "")
        )
        _ledger_set(payout, LedgerState.WAITING, note)
        return {"waiting": note}
    refusal = ""
    if journal.returns_refused:
        refusal = (
            f"Refused: it holds the money back of payouts whose journal was refused: "
            f"{', '.join(journal.returns_refused)}. Post those first (their ledger "
            "notes say why they were refused), then post this one."
        )
    elif journal.cleared_elsewhere:
        refusal = (
            f"Refused: {journal.cleared_elsewhere} transactions were cleared by another "
            f"payout's posted journal already (moved here): {', '.join(journal.elsewhere)}. "
            "Reverse them in that journal, then clear their mark to post this one."
        )
    elif journal.mismatch_count:
        refusal = (
            f"Refused: the clearing account would not net to zero for this payout by "
            f"{shown(journal.mismatch_minor, cur)}; {journal.mismatch_count} order entries "
            f"differ from Stripe: {'; '.join(journal.mismatched)}"
        )
    elif journal.unexplained:
        refusal = f"Refused: {journal.unexplained} transactions are unexplained."
    entries: list[Entry] = []
    if not refusal:
        try:
            entries = payout_entries(gl_map(ctx.integration), payout, journal)
            for entry in entries:
                entry.check_balanced()
                erp_document(entry)  # every amount expressible in its currency
            left = _clearing_left(payout, entries)
        except (exc.DataError, money.MoneyError) as error:
            refusal = f"Refused: {error}"
        else:
            if left:
                refusal = "Refused: it would leave on the clearing accounts " + "; ".join(
                    f"{account}: {shown(total, currency)}"
                    for (account, currency), total in sorted(left.items())
                )
    if refusal:
        _ledger_set(payout, LedgerState.REFUSED, refusal)
        return {"refused": refusal}
    documents = [entry_post(ctx, entry) for entry in entries]
    deposit = JournalEntry.objects.get(
        integration=payout.integration, external_reference=entries[-1].reference
    )
    BalanceTransaction.objects.filter(payout=payout, cleared_by__isnull=True).update(
        cleared_by=deposit
    )
    residual = clearing_residual(payout)
    lines = [
        f"Posted {', '.join(e.reference for e in entries)} (ERP {', '.join(documents)}).",
        "The Stripe clearing account nets to zero for this payout: "
        + "; ".join(shown(r, c) for c, r in sorted(residual.items()))
        + ".",
    ]
    _ledger_set(payout, LedgerState.POSTED, "\n".join(lines))
    return {"posted": [e.reference for e in entries], "documents": documents}


def _linked_lines(payout: Payout):
    """The clearing lines of the posted order entries the payout's transactions were
    booked by."""
    return JournalLine.objects.filter(
        key="clearing",
        entry__integration_id=payout.integration_id,
        entry__payout__isnull=True,
        entry__posted_at__isnull=False,
        entry__ledger_key__in=_payout_keys(payout),
    )


def _clearing_left(payout: Payout, entries: list[Entry]) -> dict[tuple[str, str], int]:
    """What the payout's entries, as built, would leave on each clearing account (by
    account and currency: an account the GL map moved since the sale shows here),
    counting the order entries they clear; only what is not zero."""
    left: dict[tuple[str, str], int] = defaultdict(int)
    for account, currency, total in (
        _linked_lines(payout)
        .values_list("account", "entry__currency")
        .annotate(total=Sum("signed_minor"))
    ):
        left[(account, currency.upper())] += total
    for entry in entries:
        for posting in entry.lines():
            if posting.key == "clearing":
                left[(posting.account, entry.currency.upper())] += posting.signed_minor
    return {where: total for where, total in left.items() if total}


def clearing_residual(payout: Payout) -> dict[str, int]:
    """What the Stripe clearing account holds for the payout, per currency, from the
    rows the ERP accepted (zero when it ties out): the clearing lines of the order
    entries its transactions were booked by, and of the payout's own entries."""
    held: dict[str, int] = defaultdict(int, {payout.currency.upper(): 0})
    own = JournalLine.objects.filter(
        key="clearing", entry__payout=payout, entry__posted_at__isnull=False
    )
    for rows in (own, _linked_lines(payout)):
        for currency, total in rows.values_list("entry__currency").annotate(
            total=Sum("signed_minor")
        ):
            held[currency] += total
    return dict(held)
