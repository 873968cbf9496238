"""Order-to-cash actions. Each is registered with the engine and used by the default
flows in payments/flows.py; every external write carries a deterministic
idempotency key derived from the business object (order number, charge id).

How an order's money is collected is chosen per Znode payment setting (integration
setting ``collection_modes``, reference znode-api.md §9.1), never guessed:

* ``adopt``: Znode's payment app already authorized a Stripe charge (the order's
  ``TransactionId``); we never create a second payment, capture that charge when the
  order ships, and reflect its status;
* ``saved_method``: a PaymentIntent confirmed off-session with the Stripe customer's
  saved default payment method;
* ``customer``: the customer pays: by default on a Stripe-hosted page (a Checkout
  Session, emailed and noted on the order; its PaymentIntent carries the order's
  metadata), or with Stripe.js in the storefront (``customer_payment_page``).

Stripe and Znode events are hints: the object is re-read before money or state moves.
"""

from __future__ import annotations

import hashlib
import json
import time
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from integrations.connectors.stripe.constants import METADATA_ORDER_NUMBER
from integrations.connectors.stripe.mapping import customer_facing_decline, stripe_metadata
from integrations.kernel import exceptions as exc
from integrations.kernel.exceptions import PaymentDeclined
from integrations.mapping import apply_transform
from integrations.registry import action
from integrations.runtime import ActionContext
from integrations.settings_schema import integration_setting
from payments import money
from payments.choices import CollectionMode, OrderState, PaymentStatus
from payments.models import Order, Payment
from payments.settings import BEFORE_PAYMENT_STATES, GL_ACCOUNTS

ORDER_STATUS_TABLE = "znode-order-states"
PAYMENT_STATUS_TABLE = "znode-payment-states"
METADATA_INTEGRATION = "integration"

# Outcomes a collecting step hands to the booking steps after it.
PAID, AUTHORIZED, PENDING, DECLINED, SKIPPED = (
    "paid",
    "authorized",
    "pending",
    "declined",
    "skipped",
)


def _setting(ctx: ActionContext, name: str) -> Any:
    """A typed integration setting (payments/settings.py declares them and their
    defaults)."""
    return integration_setting(ctx.integration, name)


def _status(ctx: ActionContext, table: str, outcome: str) -> str:
    """Translate our outcome through an operator-editable status table."""
    return apply_transform(f"lookup:{table}", outcome, ctx.document)


class OrderNotYetKnown(exc.TransientError):
    """A Stripe event overtook the Znode order it belongs to; retried until the order
    has been fetched (events arrive in any order)."""

    code = "order_not_yet_known"


class CannotCollect(exc.DataError):
    """A card order the platform cannot collect as configured; the job is
    quarantined with the reason, and Znode gets a note saying why."""

    code = "cannot_collect"


def _order(ctx: ActionContext, order_number: str) -> Order:
    order = Order.objects.filter(integration=ctx.integration, order_number=order_number).first()
    if order is None:
        raise OrderNotYetKnown(f"order {order_number} is not known here yet")
    return order


def _note(
    ctx: ActionContext, order: Order, *, note: str, dedupe_key: str, first: bool = False
) -> bool:
    """A note on the Znode order, once per key (``first``: the caller knows no note
    with this key can exist yet, which spares the lookup)."""
    return ctx.client("znode").add_order_note(
        order_id=order.znode_order_id, note=note, dedupe_key=dedupe_key, first=first
    )


def _store_total(order: Order, amount_minor: int) -> None:
    """The order's total as Znode (or the capture) now has it, in minor units."""
    Order.objects.filter(pk=order.pk).update(
        amount_minor=amount_minor, total=money.from_minor_units(amount_minor, order.currency)
    )


def _release_intent(ctx: ActionContext, order: Order, payment_intent: str) -> dict:
    """Cancel the order's PaymentIntent (one key per order: a retry replays it)."""
    return ctx.client("stripe").payment_intent_cancel(
        payment_intent,
        params={"cancellation_reason": "requested_by_customer"},
        idempotency_key=ctx.idempotency_key("cancel", ctx.integration.name, order.order_number),
    )


def _move(order: Order, state: str, **fields: Any) -> bool:
    """Monotonic state change under a row lock; returns whether it moved."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if not locked.can_move_to(state):
            return False
        locked.state = state
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.save()
    order.refresh_from_db()
    return True


def _address(raw: dict | None) -> dict[str, str]:
    raw = raw or {}
    lines = [raw.get("Address1"), raw.get("Address2"), raw.get("Address3")]
    country = str(raw.get("CountryCode") or raw.get("CountryName") or "").strip().upper()
    result = {
        "line1": lines[0] or "",
        "line2": " ".join(x for x in lines[1:] if x),
        "city": raw.get("CityName") or "",
        "state": raw.get("StateCode") or raw.get("StateName") or "",
        "postal_code": raw.get("PostalCode") or "",
        "country": country if len(country) == 2 else "",
    }
    return {k: v for k, v in result.items() if v}


def _before_payment(ctx: ActionContext, order: Order) -> bool:
    """Only from these states does a payment outcome move the order state: an order
    already shipped stays shipped."""
    names = _setting(ctx, "znode_states_before_payment") or BEFORE_PAYMENT_STATES
    order_now = ctx.client("znode").get_order(order.znode_order_id, expand=("omsorderstate",))
    current = str(order_now.get("OrderState"))
    return current.upper() in {n.upper() for n in names}


def _collection(ctx: ActionContext, setting_id: int | None) -> tuple[str, bool]:
    """(collection mode, capture on shipment) for a Znode payment setting."""
    mode = _setting(ctx, "collection_modes").get(str(setting_id), CollectionMode.NOT_OURS)
    manual = setting_id in _setting(ctx, "manual_capture_payment_settings")
    return mode, mode == CollectionMode.ADOPT or manual


def _set_state(ctx: ActionContext, order: Order, outcome: str) -> str:
    """The order state for ``outcome`` by the status table, as the last Znode write.

    A state the store refuses (missing, or not an order state) never blocks what was
    already written (the payment record, the journal): it becomes a note in Znode and
    a line in the step's output for an operator. Transient errors still retry."""
    state = _status(ctx, ORDER_STATUS_TABLE, outcome)
    if not state or not _before_payment(ctx, order):
        return ""
    znode = ctx.client("znode")
    try:
        znode.update_order_state(
            order_number=order.order_number,
            state_name=state,
            tracking_number=order.tracking_number,
        )
    except (exc.DataError, exc.BusinessRuleError) as error:
        _note(
            ctx,
            order,
            note=f"The platform could not set the order state {state}: {error}",
            dedupe_key=f"state:{outcome}:{state}",
        )
        return f"refused: {error}"
    return state


# --- order created ----------------------------------------------------------------------
@action("payments.fetch_order", description="Re-read the order from Znode (events are hints).")
def fetch_order(*, ctx: ActionContext, order_id: int) -> dict:
    znode = ctx.client("znode")
    raw = znode.get_order(int(order_id))
    currency = str(raw.get("CurrencyCode") or "").upper()
    if raw.get("Total") is None:
        raise exc.DataError(f"Znode order {raw.get('OrderNumber')} has no Total")
    try:
        # The client parses Znode's numbers as Decimal; never through float.
        minor = money.to_minor_units(raw["Total"], currency)
    except money.MoneyError as error:
        raise exc.DataError(f"order {raw.get('OrderNumber')}: {error}") from error
    total = Decimal(raw["Total"]) if not isinstance(raw["Total"], Decimal) else raw["Total"]
    setting_id = raw.get("PaymentSettingId")
    mode, capture_later = _collection(ctx, setting_id)
    tracking = str(raw.get("TrackingNumber") or "")
    with transaction.atomic():
        order, _ = Order.objects.select_for_update().get_or_create(
            integration=ctx.integration,
            order_number=raw["OrderNumber"],
            defaults={
                "znode_order_id": raw["OmsOrderId"],
                "currency": currency,
                "total": total,
                "amount_minor": minor,
                "collection_mode": mode,
                "capture_on_shipment": capture_later,
                "znode_payment_setting_id": setting_id,
            },
        )
        order.znode_user_id = raw.get("UserId")
        order.email = raw.get("Email") or raw.get("EmailAddress") or order.email
        order.znode_state = str(raw.get("OrderState") or "")
        # Persisted before any write of ours: a state write may clear it in Znode.
        order.tracking_number = tracking or order.tracking_number
        order.save(
            update_fields=["znode_user_id", "email", "znode_state", "tracking_number", "updated_at"]
        )
    billing = raw.get("BillingAddress") or {}
    return {
        "order_id": raw["OmsOrderId"],
        "order_number": raw["OrderNumber"],
        "user_id": raw.get("UserId"),
        "email": order.email,
        "name": " ".join(x for x in (billing.get("FirstName"), billing.get("LastName")) if x)
        or " ".join(x for x in (raw.get("FirstName"), raw.get("LastName")) if x),
        "phone": billing.get("PhoneNumber") or raw.get("PhoneNumber") or "",
        "address": _address(billing),
        "currency": currency,
        "total": str(total),
        "amount_minor": minor,
        "state": order.znode_state.upper(),
        "payment_status": str(raw.get("PaymentStatus") or ""),
        "transaction_id": str(raw.get("TransactionId") or ""),
        "tracking_number": order.tracking_number,
        "collection_mode": order.collection_mode,
        "known_state": order.state,
        "known_amount_minor": order.amount_minor,
        "payment_setting_id": setting_id,
    }


def _find_customer(ctx: ActionContext, user_id: int, email: str) -> str:
    """An existing Stripe customer for this Znode user: by our metadata, then by
    email (only a customer that names no other Znode user). Empty when none.

    Callers that charge a saved card pass no email: anyone can type an email into a
    checkout, so only our metadata may lead to someone's saved payment method."""
    gateway = ctx.client("stripe")
    try:
        found = gateway.customer_search(query=f"metadata['znode_user_id']:'{int(user_id)}'")
    except exc.NotFound:
        found = []  # an account or emulator without search: fall back to the email
    if found:
        return str(found[0]["id"])
    if not email:
        return ""
    for candidate in gateway.customer_list(email=email):
        other = (candidate.get("metadata") or {}).get("znode_user_id")
        if not other or str(other) == str(user_id):
            return str(candidate["id"])
    return ""


def _link_customer(ctx: ActionContext, user_id: int, customer_id: str, email: str) -> None:
    from customers.models import CustomerLink

    CustomerLink.objects.get_or_create(
        integration=ctx.integration,
        znode_user_id=user_id,
        defaults={"stripe_customer_id": customer_id, "email": email[:512]},
    )


def _linked_customer(ctx: ActionContext, user_id: int | None) -> str:
    """The Stripe customer this integration linked to the Znode user (empty: none)."""
    from customers.models import CustomerLink

    link = CustomerLink.objects.filter(integration=ctx.integration, znode_user_id=user_id).first()
    return link.stripe_customer_id if link else ""


@action("payments.ensure_customer", description="Find or create the Stripe customer.")
def ensure_customer(
    *,
    ctx: ActionContext,
    user_id: int,
    email: str = "",
    name: str = "",
    phone: str = "",
    address: dict | None = None,
    collection_mode: str = "",
) -> dict:

    if collection_mode in (CollectionMode.NOT_OURS, CollectionMode.ADOPT):
        # Znode's payment app keeps its own Stripe customer for adopted charges, and
        # orders we do not collect need none.
        return {"customer": "", "created": False, "skipped": collection_mode}
    linked = _linked_customer(ctx, user_id)
    if linked:
        return {"customer": linked, "created": False}
    gateway = ctx.client("stripe")
    existing = _find_customer(
        ctx, user_id, "" if collection_mode == CollectionMode.SAVED_METHOD else email
    )
    if existing:
        _link_customer(ctx, user_id, existing, email)
        return {"customer": existing, "created": False}
    # The create carries only what is the same for every order of this user, so two
    # concurrent first orders send identical requests under the same key; the
    # order-specific details follow in an update with its own key.
    customer = gateway.customer_create(
        params={"email": email[:512], "metadata": {"znode_user_id": str(user_id)}},
        idempotency_key=ctx.idempotency_key("customer", ctx.integration.name, user_id),
    )
    details: dict[str, Any] = {}
    if name:
        details["name"] = name[:256]
    if phone:
        details["phone"] = phone[:20]
    if address:
        details["address"] = address
    if details:
        digest = hashlib.sha256(json.dumps(details, sort_keys=True).encode()).hexdigest()[:16]
        gateway.customer_update(
            customer["id"],
            params=details,
            idempotency_key=ctx.idempotency_key("customer-details", customer["id"], digest),
        )
    _link_customer(ctx, user_id, customer["id"], email)
    return {"customer": customer["id"], "created": True}


def _cannot_collect(ctx: ActionContext, order: Order, reason: str) -> CannotCollect:
    """Tell Znode (a note) and return the error that quarantines the job."""
    _note(
        ctx,
        order,
        note=f"The platform cannot collect this payment: {reason}",
        dedupe_key=f"cannot-collect:{order.order_number}",
    )
    return CannotCollect(f"order {order.order_number}: {reason}")


def _charge_outcome(charge: dict) -> str:
    """PAID, AUTHORIZED, or why the charge cannot be adopted. A released
    authorization or a refunded capture keeps ``status: succeeded``, so any refund
    (a partial capture's released remainder included) is left to a person."""
    if charge.get("refunded") or int(charge.get("amount_refunded") or 0) > 0:
        return "refunded or released"
    if charge.get("status") == "succeeded" and charge.get("captured"):
        return PAID
    if charge.get("status") == "succeeded":
        return AUTHORIZED
    return str(charge.get("status") or "unknown")


def _collect_adopt(ctx: ActionContext, order: Order, *, transaction_id: str, **_: Any) -> dict:
    """Adopt the charge Znode's payment app made (the order's ``TransactionId``)."""
    existing = order.payments.filter(adopted=True).order_by("id").first()
    charge_id = existing.charge_id if existing else transaction_id
    if not charge_id.startswith(("ch_", "py_")):
        raise _cannot_collect(
            ctx,
            order,
            f"its TransactionId {charge_id!r} is not a Stripe charge; Znode's payment app "
            "must authorize the card before the platform can capture it",
        )
    if Payment.objects.filter(charge_id=charge_id).exclude(order=order).exists():
        raise _cannot_collect(
            ctx, order, f"the charge {charge_id} already pays another order; never booked twice"
        )
    try:
        charge = ctx.client("stripe").charge_retrieve(charge_id)
    except exc.NotFound as error:
        raise _cannot_collect(ctx, order, f"Stripe has no charge {charge_id}") from error
    outcome = _charge_outcome(charge)
    if outcome not in (PAID, AUTHORIZED):
        raise _cannot_collect(ctx, order, f"Stripe charge {charge_id} is {outcome}")
    currency = str(charge.get("currency") or "").upper()
    if currency != money.stripe_currency(order.currency).upper() or (
        int(charge.get("amount") or 0) < order.amount_minor
    ):
        raise _cannot_collect(
            ctx,
            order,
            f"charge {charge_id} is {charge.get('amount')} {currency} but the order is "
            f"{order.amount_minor} {order.currency} (minor units)",
        )
    status = PaymentStatus.SUCCEEDED if outcome == PAID else PaymentStatus.REQUIRES_CAPTURE
    received = int(charge.get("amount_captured") or 0) if outcome == PAID else 0
    with transaction.atomic():
        payment, _ = Payment.objects.select_for_update().get_or_create(
            order=order,
            charge_id=charge_id,
            defaults={
                "payment_intent_id": charge.get("payment_intent") or None,
                "adopted": True,
                "amount_minor": int(charge.get("amount") or 0),
                "currency": order.currency,
            },
        )
        if payment.can_move_to(status):
            payment.status = status
        payment.amount_received_minor = max(payment.amount_received_minor, received)
        payment.save()
    _move(order, OrderState.PAID if outcome == PAID else OrderState.AUTHORIZED)
    return {
        "outcome": outcome,
        "charge": charge_id,
        "amount_received": received,
        "payment_intent": payment.payment_intent_id or "",
    }


def _saved_method(ctx: ActionContext, customer: str) -> str:
    """The Stripe customer's default payment method, re-read (empty when none)."""
    if not customer:
        return ""
    found = ctx.client("stripe").customer_retrieve(customer)
    method = (found.get("invoice_settings") or {}).get("default_payment_method")
    if isinstance(method, dict):
        method = method.get("id")
    return str(method or found.get("default_source") or "")


def _create_intent(ctx: ActionContext, order: Order, *, customer: str, method: str) -> dict:
    """Create (once) the order's PaymentIntent; confirmed off-session with ``method``."""
    existing = order.payments.filter(adopted=False).order_by("id").first()
    if existing:
        return {
            "outcome": PENDING,
            "payment_intent": existing.payment_intent_id,
            "status": existing.status,
        }
    try:
        money.check_chargeable(order.amount_minor, order.currency)
    except money.MoneyError as error:
        raise exc.DataError(f"order {order.order_number}: {error}") from error
    params: dict[str, Any] = {
        "amount": order.amount_minor,
        "currency": money.stripe_currency(order.currency),
        "customer": customer,
        "metadata": _order_metadata(ctx, order),
        "capture_method": "manual" if order.capture_on_shipment else "automatic",
    }
    if _setting(ctx, "stripe_description"):
        params["description"] = f"Order {order.order_number}"
    if method:
        params.update(payment_method=method, confirm=True, off_session=True)
    gateway = ctx.client("stripe")
    key = ctx.idempotency_key("pi", ctx.integration.name, order.order_number)
    try:
        intent = gateway.payment_intent_create(params=params, idempotency_key=key)
    except PaymentDeclined as declined:
        # A business outcome, not a failure of the job: Stripe keeps the
        # PaymentIntent; the payment_failed event tells Znode and the customer.
        Payment.objects.get_or_create(
            payment_intent_id=declined.payment_intent or f"declined:{order.order_number}",
            defaults={
                "order": order,
                "amount_minor": order.amount_minor,
                "currency": order.currency,
                "decline_code": declined.decline_code or declined.error_code,
                "failure_message": str(declined)[:500],
                "charge_id": declined.charge or "",
            },
        )
        _move(order, OrderState.PAYMENT_FAILED, failure_reason=declined.decline_code)
        return {
            "outcome": DECLINED,
            "payment_intent": declined.payment_intent,
            "status": "declined",
            "decline_code": declined.decline_code,
        }
    Payment.objects.get_or_create(
        payment_intent_id=intent["id"],
        defaults={
            "order": order,
            "status": intent["status"],
            "amount_minor": intent["amount"],
            "currency": order.currency,
        },
    )
    _move(order, OrderState.PAYMENT_PENDING)
    order.refresh_from_db()
    if order.state == OrderState.CANCELED and intent["status"] != PaymentStatus.SUCCEEDED:
        # The store canceled the order while we were creating its payment: release
        # it now (the cancel flow may have run before this PaymentIntent existed).
        _release_intent(ctx, order, intent["id"])
        Payment.objects.filter(payment_intent_id=intent["id"]).update(status=PaymentStatus.CANCELED)
        return {"outcome": SKIPPED, "payment_intent": intent["id"], "status": "canceled"}
    return {"outcome": PENDING, "payment_intent": intent["id"], "status": intent["status"]}


def _collect_saved(ctx: ActionContext, order: Order, *, customer: str, **_: Any) -> dict:
    method = _saved_method(ctx, customer)
    if not method:
        if _setting(ctx, "saved_method_fallback") == CollectionMode.CUSTOMER_COMPLETES:
            return _collect_customer(ctx, order, customer=customer)
        raise _cannot_collect(
            ctx,
            order,
            f"the Stripe customer {customer or '(none)'} has no saved default payment method",
        )
    return _create_intent(ctx, order, customer=customer, method=method)


def _collect_customer(ctx: ActionContext, order: Order, *, customer: str, **_: Any) -> dict:
    if _setting(ctx, "customer_payment_page") == "checkout":
        return _ensure_page(ctx, order, customer=customer)
    result = _create_intent(ctx, order, customer=customer, method="")
    if result["outcome"] != PENDING:
        return result
    # Re-read for the client secret rather than pass it along: step outputs are
    # stored on the job, and the secret must not be.
    intent = ctx.client("stripe").payment_intent_retrieve(result["payment_intent"])
    # The storefront completes the payment with Stripe.js; the client secret is meant
    # for the customer's browser (our logs and ApiCall rows redact it).
    _note(
        ctx,
        order,
        note=f"Stripe payment {intent['id']} awaits the customer. "
        f"client_secret={intent.get('client_secret', '')}",
        dedupe_key=f"pi:{intent['id']}",
    )
    return {**result, "client_secret_handed_to_storefront": True}


def _order_metadata(ctx: ActionContext, order: Order) -> dict[str, str]:
    return stripe_metadata(
        {
            METADATA_ORDER_NUMBER: order.order_number,
            "znode_order_id": order.znode_order_id,
            "znode_user_id": order.znode_user_id,
            METADATA_INTEGRATION: ctx.integration.name,
        }
    )


def _checkout_params(ctx: ActionContext, order: Order, customer: str) -> dict[str, Any]:
    success_url = _setting(ctx, "checkout_success_url")
    if not success_url:
        raise exc.BusinessRuleError(
            f"order {order.order_number}: the integration has no checkout_success_url, so "
            "Stripe's hosted payment page cannot be created (set it, then re-drive the job)"
        )
    metadata = _order_metadata(ctx, order)
    intent_data: dict[str, Any] = {
        "metadata": metadata,
        "capture_method": "manual" if order.capture_on_shipment else "automatic",
    }
    if _setting(ctx, "stripe_description"):
        intent_data["description"] = f"Order {order.order_number}"
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": money.stripe_currency(order.currency),
                    "unit_amount": order.amount_minor,
                    "product_data": {"name": f"Order {order.order_number}"},
                },
                "quantity": 1,
            }
        ],
        "client_reference_id": order.order_number,
        "metadata": metadata,
        "payment_intent_data": intent_data,
        "success_url": success_url,
    }
    if _setting(ctx, "checkout_cancel_url"):
        params["cancel_url"] = _setting(ctx, "checkout_cancel_url")
    if customer:
        params["customer"] = customer
    elif order.email:
        params["customer_email"] = order.email
    return params


def _pages(order: Order):
    return order.payments.filter(adopted=False).exclude(checkout_session_id="")


def _newest_page(order: Order) -> Payment | None:
    return _pages(order).order_by("-id").first()


def _ensure_page(ctx: ActionContext, order: Order, *, customer: str = "") -> dict:
    """Exactly one live hosted page for the order's current total, its link sent.

    Live pages for another total are closed first (a page the customer already paid
    is never replaced: that is refused, for an operator). A re-run creates and sends
    nothing twice: the link is sent once per page, and a page's key counts the pages
    before it and digests its parameters, so a lost answer replays the same page and a
    changed order gets a new one (an unsent page nobody has the link of just expires).
    Two jobs deciding at once converge in ``_deliver_page``."""
    order.refresh_from_db()
    keep = None
    for page in _pages(order).exclude(status=PaymentStatus.CANCELED).order_by("id"):
        if keep is None and page.amount_minor == order.amount_minor:
            keep = page
            continue
        _close_hosted_page(ctx, page)
        if page.status != PaymentStatus.CANCELED:
            raise _paid_refused(ctx, order, page, "the order total changed")
    if keep is not None:
        if keep.link_sent_at:
            return _page_result(keep, status="open")
        session = ctx.client("stripe").checkout_session_retrieve(keep.checkout_session_id)
        if session.get("status") != "expired":
            return _deliver_page(ctx, order, keep, session)
        Payment.objects.filter(pk=keep.pk).update(status=PaymentStatus.CANCELED)
    return _open_page(ctx, order, customer or _linked_customer(ctx, order.znode_user_id))


def _open_page(ctx: ActionContext, order: Order, customer: str) -> dict:
    try:
        money.check_chargeable(order.amount_minor, order.currency)
    except money.MoneyError as error:
        raise exc.DataError(f"order {order.order_number}: {error}") from error
    params = _checkout_params(ctx, order, customer)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    key = ctx.idempotency_key(
        "checkout", ctx.integration.name, order.order_number, _pages(order).count(), digest
    )
    session = ctx.client("stripe").checkout_session_create(params=params, idempotency_key=key)
    page, created = Payment.objects.get_or_create(
        checkout_session_id=session["id"],
        defaults={
            "order": order,
            "amount_minor": int(session.get("amount_total") or order.amount_minor),
            "currency": order.currency,
        },
    )
    # A page's note is written only once its row exists: a new row has none yet.
    return _deliver_page(ctx, order, page, session, new_page=created)


def _deliver_page(
    ctx: ActionContext, order: Order, page: Payment, session: dict, *, new_page: bool = False
) -> dict:
    """The page's link as an order note and, unless turned off, by email (each once).

    Decided under the order's row lock, on the order as it is now: a page made for a
    total the order no longer has, for a canceled order, or after an older live page
    for the same total (two jobs at once) is closed instead of sent."""
    from payments.notifications import payment_link_email

    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        older = (
            _pages(locked)
            .filter(id__lt=page.id, amount_minor=locked.amount_minor)
            .exclude(status=PaymentStatus.CANCELED)
            .exists()
        )
        stale = (
            locked.state == OrderState.CANCELED or page.amount_minor != locked.amount_minor or older
        )
    if stale:
        _close_hosted_page(ctx, page)
        return {**_page_result(page, status="replaced"), "outcome": SKIPPED}
    _move(order, OrderState.PAYMENT_PENDING)
    if session.get("status") == "open" and session.get("url") and not page.link_sent_at:
        amount = int(session.get("amount_total") or page.amount_minor)
        shown = money.format_minor(amount, order.currency)
        _note(
            ctx,
            order,
            note=f"Stripe payment page for {shown} sent to the customer: {session['url']}",
            dedupe_key=f"checkout:{session['id']}",
            first=new_page,
        )
        if _setting(ctx, "notify_customer"):
            payment_link_email(
                order=order,
                url=session["url"],
                amount_minor=amount,
                expires_at=session.get("expires_at"),
                dedupe_key=session["id"],
            )
        Payment.objects.filter(pk=page.pk).update(link_sent_at=timezone.now())
        page.refresh_from_db()
    return _page_result(page, status=str(session.get("status") or ""))


def _page_result(page: Payment, *, status: str) -> dict:
    return {
        "outcome": PENDING,
        "checkout_session": page.checkout_session_id,
        "status": status,
        "link_sent": page.link_sent_at is not None,
    }


def _paid_refused(
    ctx: ActionContext, order: Order, page: Payment, why: str
) -> exc.BusinessRuleError:
    """The customer paid (or is paying) for an order that changed under the payment (a
    new total, a cancellation): nothing is decided for the merchant (refunds follow
    their own rules); Znode gets a note and the job waits for an operator."""
    paid = page.amount_received_minor or page.amount_minor
    amount = money.format_minor(paid, order.currency)
    where = (
        f"on the Stripe payment page {page.checkout_session_id}"
        if page.checkout_session_id
        else "in Stripe"
    )
    reference = page.payment_intent_id or page.charge_id or "payment in progress"
    reason = (
        f"{why}, but the customer already paid {amount} {where} ({reference}); "
        "refund or adjust it in Stripe"
    )
    _note(
        ctx,
        order,
        note=f"Order {order.order_number}: {reason}.",
        dedupe_key=f"paid:{page.pk}:{why}",
    )
    return exc.BusinessRuleError(f"order {order.order_number}: {reason}")


def _close_hosted_page(ctx: ActionContext, page: Payment) -> dict:
    """Expire the page so it can no longer be paid; the session as Stripe has it after.

    A page the customer already paid cannot be expired: then its PaymentIntent is taken
    onto the row, with its status, for the caller to decide."""
    gateway = ctx.client("stripe")
    try:
        session = gateway.checkout_session_expire(
            page.checkout_session_id,
            idempotency_key=ctx.idempotency_key("expire", page.checkout_session_id),
        )
    except exc.BadRequest:
        session = gateway.checkout_session_retrieve(page.checkout_session_id)
    if session.get("status") == "expired":
        Payment.objects.filter(pk=page.pk).update(status=PaymentStatus.CANCELED)
    intent = _id(session.get("payment_intent"))
    if intent and not page.payment_intent_id:
        _claim_intent(page, intent)
    if session.get("status") == "complete" and page.payment_intent_id:
        status = gateway.payment_intent_retrieve(page.payment_intent_id).get("status")
        with transaction.atomic():
            locked = Payment.objects.select_for_update().get(pk=page.pk)
            if status in PaymentStatus.values and locked.can_move_to(status):
                locked.status = status
                locked.save(update_fields=["status", "updated_at"])
    page.refresh_from_db()
    return session


def _claim_intent(page: Payment, payment_intent: str) -> None:
    """The hosted page's PaymentIntent, made by Stripe when the customer paid."""
    if not Payment.objects.filter(payment_intent_id=payment_intent).exists():
        Payment.objects.filter(pk=page.pk, payment_intent_id__isnull=True).update(
            payment_intent_id=payment_intent
        )
    page.refresh_from_db()


def _page_payment(
    ctx: ActionContext, order: Order, payment_intent: str
) -> tuple[Payment | None, dict]:
    """The hosted-page payment row whose session Stripe says made ``payment_intent``,
    and that session (re-read); ``(None, {})`` when no page of the order made it."""
    gateway = ctx.client("stripe")
    for page in _pages(order).filter(payment_intent_id__isnull=True).order_by("-id"):
        session = gateway.checkout_session_retrieve(page.checkout_session_id)
        if _id(session.get("payment_intent")) == payment_intent:
            _claim_intent(page, payment_intent)
            return page, session
    return None, {}


def _not_ours(ctx: ActionContext, order: Order, **_: Any) -> dict:
    return {
        "outcome": SKIPPED,
        "reason": f"payment setting {order.znode_payment_setting_id} is not collected here",
    }


COLLECTORS = {
    CollectionMode.ADOPT: _collect_adopt,
    CollectionMode.SAVED_METHOD: _collect_saved,
    CollectionMode.CUSTOMER_COMPLETES: _collect_customer,
    CollectionMode.NOT_OURS: _not_ours,
}


@action("payments.collect_payment", description="Collect the order's money by its mode.")
def collect_payment(
    *,
    ctx: ActionContext,
    order_number: str,
    customer: str = "",
    transaction_id: str = "",
    payment_method: str = "",
    payment_setting_id: int | None = None,
) -> dict:
    """``payment_method`` and ``payment_setting_id`` are accepted for flows edited
    before collection modes existed; Znode's payment token is never sent to Stripe
    (it is the payment app's GUID, reference §9.1)."""
    order = _order(ctx, order_number)
    if order.state in (OrderState.CANCELED, OrderState.PAID):
        return {"outcome": SKIPPED, "reason": order.state}
    collector = COLLECTORS[order.collection_mode]
    return collector(ctx, order, customer=customer, transaction_id=transaction_id)


# Flows installed before collection modes name the old key.
action("payments.create_payment_intent", description="Alias of payments.collect_payment.")(
    collect_payment
)


# --- payment outcome ----------------------------------------------------------------------
def _intent_outcome(intent: dict) -> str:
    return {
        PaymentStatus.SUCCEEDED: PAID,
        PaymentStatus.REQUIRES_CAPTURE: AUTHORIZED,
    }.get(intent.get("status"), SKIPPED)


def _id(value: Any) -> str:
    return str(value.get("id") or "") if isinstance(value, dict) else str(value or "")


@action("payments.record_success", description="Re-read the payment; mark the order paid.")
def record_success(
    *,
    ctx: ActionContext,
    order_number: str,
    payment_intent: str,
    charge: str = "",
    amount_received: int = 0,
    status: str = "succeeded",
) -> dict:
    """The event only says which PaymentIntent to look at: its status, charge and
    amount come from Stripe now, so a stale, reordered or forged event cannot mark an
    order paid (``charge``, ``amount_received`` and ``status`` are hints only)."""
    order = _order(ctx, order_number)
    intent = ctx.client("stripe").payment_intent_retrieve(payment_intent, expand=["latest_charge"])
    metadata = intent.get("metadata") or {}
    owner = metadata.get(METADATA_INTEGRATION)
    if str(metadata.get(METADATA_ORDER_NUMBER) or "") != order.order_number or (
        owner and owner != ctx.integration.name
    ):
        return {"outcome": SKIPPED, "reason": "the PaymentIntent belongs to another order"}
    outcome = _intent_outcome(intent)
    if outcome == SKIPPED:
        return {"outcome": SKIPPED, "reason": f"the PaymentIntent is {intent.get('status')}"}
    latest = intent.get("latest_charge")
    charge_id = _id(latest)
    # amount_received, or what the charge says was captured (emulators that leave
    # amount_received at 0, reference localstripe.md).
    charge = latest if isinstance(latest, dict) else {}
    received = int(
        intent.get("amount_received")
        or charge.get("amount_captured")
        or (charge.get("amount") if charge.get("captured") and charge.get("paid") else 0)
        or 0
    )
    target_status = PaymentStatus.SUCCEEDED if outcome == PAID else PaymentStatus.REQUIRES_CAPTURE
    if not Payment.objects.filter(payment_intent_id=payment_intent).exists():
        _page_payment(ctx, order, payment_intent)  # paid on the hosted page
    payment, _ = Payment.objects.get_or_create(
        payment_intent_id=payment_intent,
        defaults={"order": order, "amount_minor": intent["amount"], "currency": order.currency},
    )
    if order.state == OrderState.CANCELED:
        return _paid_after_cancel(ctx, order, payment, intent)
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.can_move_to(target_status):
            payment.status = target_status
        payment.charge_id = charge_id or payment.charge_id
        payment.amount_received_minor = max(payment.amount_received_minor, received)
        payment.save()
    order.refresh_from_db()
    if outcome == PAID and (
        received != order.amount_minor
        or str(intent.get("currency") or "").upper()
        != money.stripe_currency(order.currency).upper()
    ):
        # Stripe's truth is kept on the payment; the order is not marked paid for a
        # total it no longer has (a new total raced the customer's payment).
        total = money.format_money(order.total, order.currency)
        raise _paid_refused(ctx, order, payment, f"the order total is now {total}")
    moved = _move(
        order,
        OrderState.AUTHORIZED if outcome == AUTHORIZED else OrderState.PAID,
        failure_reason="",
    )
    return {
        "outcome": outcome,
        "order_state": order.state,
        "moved": moved,
        "charge": payment.charge_id,
        "amount_received": received
        if outcome == PAID
        else int(intent.get("amount_capturable") or 0),
    }


def _paid_after_cancel(ctx: ActionContext, order: Order, payment: Payment, intent: dict) -> dict:
    """Money for an order canceled in the store: an authorization is released; a
    payment is never booked against it (note in Znode, quarantined for an operator)."""
    if intent.get("status") == PaymentStatus.REQUIRES_CAPTURE:
        _release_intent(ctx, order, intent["id"])
        Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.CANCELED)
        return {"outcome": SKIPPED, "reason": "order canceled: authorization released"}
    Payment.objects.filter(pk=payment.pk).update(
        status=PaymentStatus.SUCCEEDED,
        charge_id=_id(intent.get("latest_charge")),
        amount_received_minor=int(intent.get("amount_received") or 0),
    )
    payment.refresh_from_db()
    raise _paid_refused(ctx, order, payment, CANCELED_IN_ZNODE)


def _record_in_znode(
    ctx: ActionContext, order: Order, charge: str, amount: Decimal, status: str, current: dict
) -> bool:
    """The payment record, exactly once for ours, never dropping someone else's."""
    payment = order.payments.filter(charge_id=charge).order_by("id").first()

    def baseline(now: int) -> int:
        """Matching history rows before our first try: the first count seen, kept."""
        if payment is None:
            return now
        Payment.objects.filter(pk=payment.pk, znode_history_baseline__isnull=True).update(
            znode_history_baseline=now
        )
        payment.refresh_from_db(fields=["znode_history_baseline"])
        return payment.znode_history_baseline

    return ctx.client("znode").record_payment(
        order_id=order.znode_order_id,
        transaction_reference=charge,
        amount=amount,
        status=status,
        payment_setting_id=int(
            order.znode_payment_setting_id or _setting(ctx, "znode_payment_setting_id") or 0
        ),
        transaction_date=timezone.now(),
        baseline=baseline,
        current=current,
    )


@action("payments.znode_mark_paid", description="Payment record, status and state in Znode.")
def znode_mark_paid(
    *,
    ctx: ActionContext,
    order_number: str,
    charge: str = "",
    amount_received: int = 0,
    outcome: str = PAID,
    znode_payment_status: str | None = None,
    znode_transaction_id: str | None = None,
) -> dict:
    """Writes in the order that keeps the money's evidence first: the payment record,
    the transaction id, the payment status, and the order state last (a state the
    store refuses never blocks the others).

    What Znode shows decides what is written. A payment record needs the history read
    fresh, right before it (the record is not idempotent): that one read serves every
    decision. An authorization records nothing: there the order as the flow's fetch
    step read it (``znode_*`` inputs) is enough to skip writes Znode already shows (a
    stale value only causes a harmless re-write)."""
    if outcome not in (PAID, AUTHORIZED):
        return {"skipped": f"outcome {outcome or 'none'}"}
    order = _order(ctx, order_number)
    if outcome == AUTHORIZED and order.state != OrderState.AUTHORIZED:
        # A late "capturable" event after the capture (or a cancel): Znode already
        # shows the newer truth; never write the older one over it.
        return {"skipped": f"order is {order.state}"}
    znode = ctx.client("znode")
    payment_status = _status(ctx, PAYMENT_STATUS_TABLE, outcome)
    if outcome == AUTHORIZED and znode_payment_status is not None:
        current = {"PaymentStatus": znode_payment_status, "TransactionId": znode_transaction_id}
    else:
        current = znode.get_order(order.znode_order_id, expand=("omspaymentstate",))
    recorded = False
    if outcome == PAID and charge:
        amount = money.from_minor_units(amount_received or order.amount_minor, order.currency)
        recorded = _record_in_znode(ctx, order, charge, amount, payment_status, current)
    if charge:
        znode.update_transaction_id(
            order_id=order.znode_order_id, transaction_id=charge, current=current
        )
    znode.update_payment_status(
        order_id=order.znode_order_id, status_name=payment_status, current=current
    )
    state = _set_state(ctx, order, outcome)
    return {"state": state, "payment_status": payment_status, "payment_recorded": recorded}


@action("payments.erp_post_sale", description="Sales journal entry, idempotent by charge id.")
def erp_post_sale(
    *, ctx: ActionContext, order_number: str, charge: str, amount_received: int, outcome: str = PAID
) -> dict:
    if outcome != PAID or not charge:
        return {"skipped": f"outcome {outcome or 'none'}"}
    if ctx.integration.erp_id is None:
        return {"skipped": "no ERP connection"}
    order = _order(ctx, order_number)
    accounts = {**GL_ACCOUNTS, **_setting(ctx, "gl_accounts")}
    amount = str(money.from_minor_units(amount_received or order.amount_minor, order.currency))
    # The date comes from the event, so a retry after midnight sends the same entry.
    when = ctx.event.occurred_at if ctx.event and ctx.event.occurred_at else timezone.now()
    entry = {
        "external_reference": f"sale:{charge}",
        "date": when.date().isoformat(),
        "currency": order.currency,
        "memo": f"Stripe payment for order {order.order_number}",
        "lines": [
            {
                "account": accounts["clearing"],
                "debit": amount,
                "credit": "0",
                "description": f"Stripe {charge}",
            },
            {
                "account": accounts["sales"],
                "debit": "0",
                "credit": amount,
                "description": f"Order {order.order_number}",
            },
        ],
    }
    document = ctx.client("erp").journal_entry_post(entry=entry)
    return {"journal_entry": document.get("id"), "amount": amount}


@action("payments.record_failure", description="Declined: Znode status, note, customer email.")
def record_failure(
    *,
    ctx: ActionContext,
    order_number: str,
    payment_intent: str,
    decline_code: str = "",
    failure_code: str = "",
    message: str = "",
) -> dict:
    from payments.notifications import payment_failed_email

    order = _order(ctx, order_number)
    payment = Payment.objects.filter(payment_intent_id=payment_intent).first()
    session: dict = {}
    if payment is None:
        payment, session = _page_payment(ctx, order, payment_intent)
    if payment and payment.checkout_session_id:
        newest = _newest_page(order)
        if payment.status == PaymentStatus.CANCELED or newest != payment:
            # A decline on a page since closed (a new total, a cancellation): the
            # customer was sent the page that counts; this one tells nothing.
            return {"ignored": "the payment page was closed"}
        session = session or ctx.client("stripe").checkout_session_retrieve(
            payment.checkout_session_id
        )
    if payment and payment.status != PaymentStatus.SUCCEEDED:
        Payment.objects.filter(pk=payment.pk).update(
            decline_code=decline_code or failure_code, failure_message=message[:500]
        )
    moved = _move(order, OrderState.PAYMENT_FAILED, failure_reason=decline_code or failure_code)
    if not moved and order.state != OrderState.PAYMENT_FAILED:
        # Decided under the row lock: a late or concurrent failure never overwrites
        # an authorization, a payment or a cancellation (in Znode or by email).
        return {"ignored": f"order is {order.state}"}
    znode = ctx.client("znode")
    shown = customer_facing_decline(decline_code or failure_code)
    _note(
        ctx,
        order,
        note=f"Payment failed ({decline_code or failure_code or 'declined'}): {message}",
        dedupe_key=f"failed:{payment_intent}",
    )
    znode.update_payment_status(
        order_id=order.znode_order_id,
        status_name=_status(ctx, PAYMENT_STATUS_TABLE, "payment_failed"),
    )
    state = _set_state(ctx, order, "payment_failed")
    # On the hosted page the customer may simply try another card: the email says where.
    retry_url = session.get("url") if session.get("status") == "open" else ""
    emailed = _setting(ctx, "notify_customer") and payment_failed_email(
        order=order, reason=shown, dedupe_key=payment_intent, retry_url=retry_url or ""
    )
    return {"state": state, "shown_to_customer": shown, "emailed": emailed}


@action(
    "payments.hosted_page_expired",
    description="A payment page expired unpaid: close it here, note it in Znode.",
)
def hosted_page_expired(
    *, ctx: ActionContext, order_number: str, checkout_session: str, occurred_at: int = 0
) -> dict:
    """Re-read the session (the event is a hint). The order keeps waiting for its money;
    replaying its order.created event, or any change of the order, sends a new page.
    Only a page that ran out of time (``expires_at`` reached by the event's time) is
    noted: one we closed (new total, cancellation) expired before its time."""
    order = _order(ctx, order_number)
    page = order.payments.filter(checkout_session_id=checkout_session).first()
    if page is None:
        return {"skipped": "not a payment page of this order"}
    session = ctx.client("stripe").checkout_session_retrieve(checkout_session)
    if session.get("status") != "expired":
        return {"skipped": f"the page is {session.get('status')}"}
    Payment.objects.filter(pk=page.pk).exclude(status=PaymentStatus.SUCCEEDED).update(
        status=PaymentStatus.CANCELED
    )
    newest = _newest_page(order)
    ran_out = int(session.get("expires_at") or 0) <= (occurred_at or int(time.time()))
    waiting = order.state in (OrderState.PAYMENT_PENDING, OrderState.PAYMENT_FAILED)
    if not ran_out or newest != page or not waiting:
        # Closed by us (a new total, a cancellation) or paid another way.
        return {"page": "closed", "noted": False}
    _note(
        ctx,
        order,
        note=f"The Stripe payment page {checkout_session} expired unpaid. To send the "
        "customer a new one, replay the order's order.created event (admin: Events) or "
        "change the order.",
        dedupe_key=f"expired:{checkout_session}",
    )
    return {"page": "expired", "noted": True}


# --- order changed in Znode ---------------------------------------------------------------
CANCELED_STATES = ("CANCELED", "CANCELLED")
CANCELED_IN_ZNODE = "the order was canceled in Znode"


def _capture(ctx: ActionContext, order: Order, payment: Payment, amount_minor: int) -> dict:
    """Capture the order's current total when it ships: never more than authorized,
    and exactly the total Znode shows now (a lowered total is captured lowered)."""
    if amount_minor > payment.amount_minor:
        raise exc.BusinessRuleError(
            f"order {order.order_number}: the total {amount_minor} is above the "
            f"{payment.amount_minor} authorized (minor units); not captured"
        )
    gateway = ctx.client("stripe")
    key = ctx.idempotency_key("capture", ctx.integration.name, order.order_number)
    if payment.adopted:
        try:
            charge = gateway.charge_capture(
                payment.charge_id, params={"amount": amount_minor}, idempotency_key=key
            )
        except exc.BadRequest:
            # Captured already (e.g. by Znode's own admin)? Then the money is in.
            charge = gateway.charge_retrieve(payment.charge_id)
        if not charge.get("captured") or charge.get("refunded"):
            raise exc.BusinessRuleError(f"Stripe did not capture {payment.charge_id}")
        received = int(charge.get("amount_captured") or amount_minor)
        with transaction.atomic():
            locked = Payment.objects.select_for_update().get(pk=payment.pk)
            if locked.can_move_to(PaymentStatus.SUCCEEDED):
                locked.status = PaymentStatus.SUCCEEDED
            locked.amount_received_minor = received
            locked.save()
        _store_total(order, received)
        _move(order, OrderState.PAID)
        return {
            "action": "captured",
            "outcome": PAID,
            "charge": payment.charge_id,
            "amount_received": received,
        }
    # The amount first: payment_intent.succeeded may be handled before this returns,
    # and it checks what was received against the order.
    _store_total(order, amount_minor)
    captured = gateway.payment_intent_capture(
        payment.payment_intent_id, params={"amount_to_capture": amount_minor}, idempotency_key=key
    )
    # payment_intent.succeeded follows and books it (re-read there).
    return {"action": "captured", "outcome": PENDING, "status": captured["status"]}


def _cancel(ctx: ActionContext, order: Order, payment: Payment | None) -> dict:
    """Release whatever the order's payment still holds. Money already taken (or still
    settling) is never kept quietly for a canceled order, nor refunded by guess: our
    order follows Znode to canceled, so a late success is held too (record_success),
    and the merchant gets a note; taken money waits for an operator."""
    gateway = ctx.client("stripe")
    key = ctx.idempotency_key("cancel", ctx.integration.name, order.order_number)
    if payment and payment.checkout_session_id and payment.status != PaymentStatus.CANCELED:
        # Close the hosted page first (Checkout owns its PaymentIntent while it is
        # open); a page already paid hands over its PaymentIntent and status.
        _close_hosted_page(ctx, payment)
    if payment and payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.PROCESSING):
        return _canceled_with_money(ctx, order, payment)
    if payment and not payment.adopted and not (payment.payment_intent_id or "").startswith("pi_"):
        # A decline recorded without a PaymentIntent, or a closed page: nothing to release.
        Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.CANCELED)
    elif payment and payment.status != PaymentStatus.CANCELED:
        if payment.adopted:
            # Releasing an uncaptured charge is a refund of it (Znode's own "void").
            gateway.refund_create(params={"charge": payment.charge_id}, idempotency_key=key)
        else:
            try:
                _release_intent(ctx, order, payment.payment_intent_id)
            except exc.BadRequest:
                # Our status was behind: Stripe says why it cannot be canceled.
                intent = gateway.payment_intent_retrieve(payment.payment_intent_id)
                if intent.get("status") not in (PaymentStatus.SUCCEEDED, PaymentStatus.PROCESSING):
                    raise
                Payment.objects.filter(pk=payment.pk).update(
                    status=intent["status"],
                    charge_id=_id(intent.get("latest_charge")) or payment.charge_id,
                    amount_received_minor=int(intent.get("amount_received") or 0),
                )
                payment.refresh_from_db()
                return _canceled_with_money(ctx, order, payment)
        Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.CANCELED)
    _move(order, OrderState.CANCELED)
    return {"action": "canceled" if payment else "none", "order_state": order.state}


def _canceled_with_money(ctx: ActionContext, order: Order, payment: Payment) -> dict:
    _move(order, OrderState.CANCELED)  # a paid (booked) order stays paid: final
    if payment.status == PaymentStatus.PROCESSING:
        _note(
            ctx,
            order,
            note=f"Order {order.order_number} was canceled while its Stripe payment "
            f"{payment.payment_intent_id} is still settling: if it succeeds it is held for "
            "an operator, never booked.",
            dedupe_key=f"settling:{payment.pk}",
        )
        return {"action": "canceled", "settling": payment.payment_intent_id}
    if payment.charge_id and _fully_refunded(ctx, payment):
        return {"action": "canceled", "refunded": payment.charge_id}
    raise _paid_refused(ctx, order, payment, CANCELED_IN_ZNODE)


def _fully_refunded(ctx: ActionContext, payment: Payment) -> bool:
    """Stripe shows the charge refunded already (e.g. by Znode's own payment app)."""
    charge = ctx.client("stripe").charge_retrieve(payment.charge_id)
    return bool(charge.get("refunded"))


def _pays_on_page(ctx: ActionContext, order: Order) -> bool:
    return (
        order.collection_mode == CollectionMode.CUSTOMER_COMPLETES
        and _setting(ctx, "customer_payment_page") == "checkout"
    )


def _total_changed_after_payment(ctx: ActionContext, order: Order, amount_minor: int) -> dict:
    """Znode's total moved after the money was taken and booked: the booking stands,
    the merchant is told (once per total) to collect or refund the difference."""
    shown = money.format_minor(amount_minor, order.currency)
    paid = money.format_money(order.total, order.currency)
    _note(
        ctx,
        order,
        note=f"Order {order.order_number}: the total changed to {shown} after the customer "
        f"paid {paid}; collect or refund the difference in Stripe.",
        dedupe_key=f"total-after-paid:{amount_minor}",
    )
    return {"action": "noted", "paid_minor": order.amount_minor, "znode_minor": amount_minor}


def _sync_hosted_page(ctx: ActionContext, order: Order, amount_minor: int) -> dict:
    """The order's total is Znode's, stored first (a payment for another total is then
    refused when it is booked); the page follows it. Safe to re-run: whether a new page
    is needed is decided by the pages, not by what was stored."""
    changed = amount_minor != order.amount_minor
    if changed:
        _store_total(order, amount_minor)
        order.refresh_from_db()
    result = _ensure_page(ctx, order)
    return {**result, "action": "amount_updated" if changed else "none"}


@action(
    "payments.sync_order_change",
    description="Cancel, re-amount or capture after a Znode change.",
)
def sync_order_change(
    *, ctx: ActionContext, order_number: str, state: str, amount_minor: int
) -> dict:
    order = Order.objects.filter(integration=ctx.integration, order_number=order_number).first()
    if order is None:
        return {"ignored": "order not handled here"}
    payment = order.payments.order_by("-id").first()
    state = state.upper()
    if state in CANCELED_STATES:
        return _cancel(ctx, order, payment)
    if payment and state == "SHIPPED" and payment.status == PaymentStatus.REQUIRES_CAPTURE:
        return _capture(ctx, order, payment, amount_minor)
    if payment and state == "SHIPPED" and payment.adopted and order.state == OrderState.PAID:
        # Captured here already: a re-run after the capture's answer was stored but not
        # the step's (a lost lease, a crash) hands the booking steps the capture again;
        # they are idempotent (payment record by history, journal by charge id).
        return {
            "action": "captured",
            "outcome": PAID,
            "charge": payment.charge_id,
            "amount_received": payment.amount_received_minor,
        }
    waiting = order.state in (OrderState.NEW, OrderState.PAYMENT_PENDING, OrderState.PAYMENT_FAILED)
    if waiting and (payment.checkout_session_id if payment else _pays_on_page(ctx, order)):
        return _sync_hosted_page(ctx, order, amount_minor)
    if order.state == OrderState.PAID and amount_minor != order.amount_minor:
        return _total_changed_after_payment(ctx, order, amount_minor)
    if amount_minor != order.amount_minor and waiting:
        updatable = (PaymentStatus.REQUIRES_PAYMENT_METHOD, PaymentStatus.REQUIRES_CONFIRMATION)
        if payment and payment.status not in updatable:
            # Processing or awaiting action: Stripe cannot take a new amount now.
            raise exc.BusinessRuleError(
                f"{order_number}: total changed while the payment is {payment.status}"
            )
        if payment and (payment.payment_intent_id or "").startswith("pi_"):
            # One key per Znode change: the same amount can come back later (20 → 25 →
            # 20 → 25) and must then be applied again, not replayed from the cache.
            change = ctx.event.external_id if ctx.event else f"job{ctx.job.pk}"
            updated = ctx.client("stripe").payment_intent_update(
                payment.payment_intent_id,
                params={"amount": amount_minor},
                idempotency_key=ctx.idempotency_key(
                    "amount", ctx.integration.name, order_number, change, amount_minor
                ),
            )
            if updated.get("amount") != amount_minor:
                raise exc.BusinessRuleError(
                    f"Stripe kept {updated.get('amount')} for {order_number}, not {amount_minor}"
                )
            Payment.objects.filter(pk=payment.pk).update(amount_minor=amount_minor)
        _store_total(order, amount_minor)
        return {"action": "amount_updated", "amount_minor": amount_minor}
    return {"action": "none"}
