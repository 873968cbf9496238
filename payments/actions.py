"""Order-to-cash actions. Each is registered with the engine and used by the default
flows in payments/flows.py; every external write carries a deterministic
idempotency key derived from the business object (order number, charge id).
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from integrations import exceptions as exc
from integrations.connectors.erp.client import erp_client
from integrations.connectors.stripe.client import PaymentDeclined, StripeGateway
from integrations.connectors.stripe.constants import METADATA_ORDER_NUMBER
from integrations.connectors.stripe.mapping import customer_facing_decline, stripe_metadata
from integrations.connectors.znode.client import ZnodeClient
from integrations.mapping import apply_transform
from integrations.registry import action
from integrations.runtime import ActionContext
from payments import money
from payments.choices import CollectionMode, OrderState, PaymentStatus
from payments.models import Order, Payment

ORDER_STATUS_TABLE = "znode-order-states"
PAYMENT_STATUS_TABLE = "znode-payment-states"


def _settings(ctx: ActionContext) -> dict[str, Any]:
    return (ctx.integration.settings or {}) if ctx.integration else {}


def _status(ctx: ActionContext, table: str, outcome: str) -> str:
    """Translate our outcome through an operator-editable status table."""
    return apply_transform(f"lookup:{table}", outcome, ctx.document)


class OrderNotYetKnown(exc.TransientError):
    """A Stripe event overtook the Znode order it belongs to; retried until the order
    has been fetched (events arrive in any order)."""

    code = "order_not_yet_known"


def _order(ctx: ActionContext, order_number: str) -> Order:
    order = Order.objects.filter(integration=ctx.integration, order_number=order_number).first()
    if order is None:
        raise OrderNotYetKnown(f"order {order_number} is not known here yet")
    return order


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


# Znode states an order can be in while it waits for its money. Only from these does a
# payment outcome move the order state: an order already shipped stays shipped.
BEFORE_PAYMENT_STATES = (
    "SUBMITTED",
    "PENDING PAYMENT",
    "PENDING APPROVAL",
    "IN REVIEW",
    "FAILED",
)


def _before_payment(ctx: ActionContext, znode: ZnodeClient, order: Order) -> bool:
    names = _settings(ctx).get("znode_states_before_payment") or BEFORE_PAYMENT_STATES
    current = str(
        znode.get_order(order.znode_order_id, expand=("omsorderstate",)).get("OrderState")
    )
    return current.upper() in {n.upper() for n in names}


# --- order created ----------------------------------------------------------------------
@action("payments.fetch_order", description="Re-read the order from Znode (events are hints).")
def fetch_order(*, ctx: ActionContext, order_id: int) -> dict:
    znode = ZnodeClient(ctx.connection("znode"))
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
    mode = _settings(ctx).get("collection_mode", CollectionMode.CHARGE_SAVED_METHOD)
    if setting_id in (_settings(ctx).get("manual_capture_payment_settings") or []):
        mode = CollectionMode.AUTHORIZE_THEN_CAPTURE
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
                "znode_payment_setting_id": setting_id,
            },
        )
        order.znode_user_id = raw.get("UserId")
        order.email = raw.get("Email") or raw.get("EmailAddress") or order.email
        order.znode_state = str(raw.get("OrderState") or "")
        order.save(update_fields=["znode_user_id", "email", "znode_state", "updated_at"])
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
        "payment_token": raw.get("PaymentTransactionToken") or "",
        "known_state": order.state,
        "known_amount_minor": order.amount_minor,
        "payment_setting_id": setting_id,
    }


@action("payments.ensure_customer", description="Find or create the Stripe customer.")
def ensure_customer(
    *,
    ctx: ActionContext,
    user_id: int,
    email: str = "",
    name: str = "",
    phone: str = "",
    address: dict | None = None,
) -> dict:
    from customers.models import CustomerLink

    link = CustomerLink.objects.filter(integration=ctx.integration, znode_user_id=user_id).first()
    if link:
        return {"customer": link.stripe_customer_id, "created": False}
    # The create carries only what is the same for every order of this user, so two
    # concurrent first orders send identical requests under the same key; the
    # order-specific details follow in an update with its own key.
    gateway = StripeGateway(ctx.connection("stripe"))
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
    CustomerLink.objects.get_or_create(
        integration=ctx.integration,
        znode_user_id=user_id,
        defaults={"stripe_customer_id": customer["id"], "email": email[:512]},
    )
    return {"customer": customer["id"], "created": True}


@action(
    "payments.create_payment_intent",
    description="Create (once) and confirm the order's PaymentIntent.",
)
def create_payment_intent(
    *,
    ctx: ActionContext,
    order_number: str,
    customer: str,
    payment_method: str = "",
    payment_setting_id: int | None = None,
) -> dict:
    order = _order(ctx, order_number)
    stripe_settings = _settings(ctx).get("stripe_payment_settings")
    if stripe_settings and payment_setting_id not in stripe_settings:
        # Purchase orders, cash on delivery...: not ours to collect.
        return {"payment_intent": "", "status": "skipped", "reason": "not a Stripe payment"}
    existing = order.payments.order_by("id").first()
    if existing:
        return {"payment_intent": existing.payment_intent_id, "status": existing.status}
    if order.state in (OrderState.CANCELED, OrderState.PAID):
        return {"payment_intent": "", "status": "skipped", "reason": order.state}
    try:
        money.check_chargeable(order.amount_minor, order.currency)
    except money.MoneyError as error:
        raise exc.DataError(f"order {order.order_number}: {error}") from error
    manual = order.collection_mode == CollectionMode.AUTHORIZE_THEN_CAPTURE
    params: dict[str, Any] = {
        "amount": order.amount_minor,
        "currency": money.stripe_currency(order.currency),
        "customer": customer,
        "metadata": stripe_metadata(
            {
                METADATA_ORDER_NUMBER: order.order_number,
                "znode_order_id": order.znode_order_id,
                "znode_user_id": order.znode_user_id,
                "integration": ctx.integration.name,
            }
        ),
        "capture_method": "manual" if manual else "automatic",
    }
    if _settings(ctx).get("stripe_description", True):
        params["description"] = f"Order {order.order_number}"
    confirm = order.collection_mode != CollectionMode.CUSTOMER_COMPLETES and payment_method
    if confirm:
        params.update(payment_method=payment_method, confirm=True, off_session=True)
    gateway = StripeGateway(ctx.connection("stripe"))
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
        gateway.payment_intent_cancel(
            intent["id"],
            params={"cancellation_reason": "requested_by_customer"},
            idempotency_key=ctx.idempotency_key("cancel", ctx.integration.name, order_number),
        )
        Payment.objects.filter(payment_intent_id=intent["id"]).update(status=PaymentStatus.CANCELED)
        return {"payment_intent": intent["id"], "status": "canceled", "reason": "order canceled"}
    result = {"payment_intent": intent["id"], "status": intent["status"]}
    if order.collection_mode == CollectionMode.CUSTOMER_COMPLETES:
        result["client_secret_handed_to_storefront"] = True
        # The storefront completes the payment with Stripe.js; the client secret is
        # meant for the customer's browser (our logs and ApiCall rows redact it).
        ZnodeClient(ctx.connection("znode")).add_order_note(
            order_id=order.znode_order_id,
            note=f"Stripe payment {intent['id']} awaits the customer. "
            f"client_secret={intent.get('client_secret', '')}",
            dedupe_key=f"pi:{intent['id']}",
        )
    return result


# --- payment outcome ----------------------------------------------------------------------
@action("payments.record_success", description="Mark the local order and payment paid.")
def record_success(
    *,
    ctx: ActionContext,
    order_number: str,
    payment_intent: str,
    charge: str = "",
    amount_received: int = 0,
    status: str = "succeeded",
) -> dict:
    order = _order(ctx, order_number)
    payment, _ = Payment.objects.get_or_create(
        payment_intent_id=payment_intent,
        defaults={"order": order, "amount_minor": order.amount_minor, "currency": order.currency},
    )
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.can_move_to(status):
            payment.status = status
        payment.charge_id = charge or payment.charge_id
        payment.amount_received_minor = max(payment.amount_received_minor, amount_received or 0)
        payment.save()
    target = OrderState.AUTHORIZED if status == PaymentStatus.REQUIRES_CAPTURE else OrderState.PAID
    moved = _move(order, target, failure_reason="")
    return {"order_state": order.state, "moved": moved, "charge": payment.charge_id}


@action("payments.znode_mark_paid", description="Order state, payment status and record in Znode.")
def znode_mark_paid(
    *,
    ctx: ActionContext,
    order_number: str,
    charge: str,
    amount_received: int,
    outcome: str = "paid",
) -> dict:
    order = _order(ctx, order_number)
    if outcome == "authorized" and order.state != OrderState.AUTHORIZED:
        # A late "capturable" event after the capture (or a cancel): Znode already
        # shows the newer truth; never write the older one over it.
        return {"skipped": f"order is {order.state}"}
    znode = ZnodeClient(ctx.connection("znode"))
    state = _status(ctx, ORDER_STATUS_TABLE, outcome)
    payment_status = _status(ctx, PAYMENT_STATUS_TABLE, outcome)
    znode.update_payment_status(order_id=order.znode_order_id, status_name=payment_status)
    if state and _before_payment(ctx, znode, order):
        znode.update_order_state(order_number=order.order_number, state_name=state)
    recorded = False
    if outcome == "paid" and charge:
        recorded = znode.record_payment(
            order_id=order.znode_order_id,
            transaction_reference=charge,
            amount=money.from_minor_units(amount_received or order.amount_minor, order.currency),
            status=payment_status,
            payment_setting_id=int(
                order.znode_payment_setting_id
                or _settings(ctx).get("znode_payment_setting_id", 0)
                or 0
            ),
            transaction_date=timezone.now(),
        )
    return {"state": state, "payment_status": payment_status, "payment_recorded": recorded}


@action("payments.erp_post_sale", description="Sales journal entry, idempotent by charge id.")
def erp_post_sale(
    *, ctx: ActionContext, order_number: str, charge: str, amount_received: int
) -> dict:
    if ctx.integration.erp_id is None:
        return {"skipped": "no ERP connection"}
    order = _order(ctx, order_number)
    accounts = {"clearing": "1150", "sales": "4000", **_settings(ctx).get("gl_accounts", {})}
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
    document = erp_client(ctx.connection("erp")).journal_entry_post(entry=entry)
    return {"journal_entry": document.get("id"), "amount": amount}


@action("payments.record_failure", description="Declined: Znode state, note, customer email.")
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
    if payment and payment.status != PaymentStatus.SUCCEEDED:
        Payment.objects.filter(pk=payment.pk).update(
            decline_code=decline_code or failure_code, failure_message=message[:500]
        )
    moved = _move(order, OrderState.PAYMENT_FAILED, failure_reason=decline_code or failure_code)
    if not moved and order.state != OrderState.PAYMENT_FAILED:
        # Decided under the row lock: a late or concurrent failure never overwrites
        # an authorization, a payment or a cancellation (in Znode or by email).
        return {"ignored": f"order is {order.state}"}
    znode = ZnodeClient(ctx.connection("znode"))
    shown = customer_facing_decline(decline_code or failure_code)
    znode.update_payment_status(
        order_id=order.znode_order_id,
        status_name=_status(ctx, PAYMENT_STATUS_TABLE, "payment_failed"),
    )
    state = _status(ctx, ORDER_STATUS_TABLE, "payment_failed")
    if state and _before_payment(ctx, znode, order):
        znode.update_order_state(order_number=order.order_number, state_name=state)
    znode.add_order_note(
        order_id=order.znode_order_id,
        note=f"Payment failed ({decline_code or failure_code or 'declined'}): {message}",
        dedupe_key=f"failed:{payment_intent}",
    )
    emailed = payment_failed_email(order=order, reason=shown, dedupe_key=payment_intent)
    return {"state": state, "shown_to_customer": shown, "emailed": emailed}


# --- order changed in Znode before payment ------------------------------------------------
CANCELED_STATES = ("CANCELED", "CANCELLED")


@action(
    "payments.sync_order_change",
    description="Cancel, re-amount or capture the PaymentIntent after a Znode change.",
)
def sync_order_change(
    *, ctx: ActionContext, order_number: str, state: str, amount_minor: int
) -> dict:
    order = Order.objects.filter(integration=ctx.integration, order_number=order_number).first()
    if order is None:
        return {"ignored": "order not handled here"}
    payment = order.payments.order_by("-id").first()
    gateway = StripeGateway(ctx.connection("stripe"))
    state = state.upper()
    if state in CANCELED_STATES:
        if payment and payment.status not in (PaymentStatus.SUCCEEDED, PaymentStatus.CANCELED):
            gateway.payment_intent_cancel(
                payment.payment_intent_id,
                params={"cancellation_reason": "requested_by_customer"},
                idempotency_key=ctx.idempotency_key("cancel", ctx.integration.name, order_number),
            )
            Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.CANCELED)
        _move(order, OrderState.CANCELED)
        return {"action": "canceled" if payment else "none", "order_state": order.state}
    if payment and state == "SHIPPED" and payment.status == PaymentStatus.REQUIRES_CAPTURE:
        captured = gateway.payment_intent_capture(
            payment.payment_intent_id,
            params={},
            idempotency_key=ctx.idempotency_key("capture", ctx.integration.name, order_number),
        )
        return {"action": "captured", "status": captured["status"]}
    if amount_minor != order.amount_minor and order.state in (
        OrderState.NEW,
        OrderState.PAYMENT_PENDING,
        OrderState.PAYMENT_FAILED,
    ):
        updatable = (PaymentStatus.REQUIRES_PAYMENT_METHOD, PaymentStatus.REQUIRES_CONFIRMATION)
        if payment and payment.status not in updatable:
            # Processing or awaiting action: Stripe cannot take a new amount now.
            raise exc.BusinessRuleError(
                f"{order_number}: total changed while the payment is {payment.status}"
            )
        if payment:
            # One key per Znode change: the same amount can come back later (20 → 25 →
            # 20 → 25) and must then be applied again, not replayed from the cache.
            change = ctx.event.external_id if ctx.event else f"job{ctx.job.pk}"
            updated = gateway.payment_intent_update(
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
        Order.objects.filter(pk=order.pk).update(
            amount_minor=amount_minor, total=money.from_minor_units(amount_minor, order.currency)
        )
        return {"action": "amount_updated", "amount_minor": amount_minor}
    return {"action": "none"}
