"""How often assisted mapping proposes the right Znode field for a Stripe field.

The labelled set is built from the two systems' real field lists (reference
znode-api.md §3.3 OrderModel, §6 UserModel, AddressModel; stripe.md A8 Customer and
the PaymentIntent's parameters): a Znode order with its user and addresses, as a
flow's document holds it, and for each Stripe field the Znode field that is meant.
Every field of the sample competes (about 170), as in the admin.

    .venv/bin/python benchmarks/assisted_mapping.py

prints top-1 and top-3 accuracy without the ``[ai]`` extra, and with it when the
extra is installed (`pip install -e .[ai]`;
``RESULT assisted_mapping scorer=… top1=… top3=… pairs=…``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

ORDER_FIELDS = [
    "OmsOrderId",
    "OmsOrderDetailsId",
    "OrderNumber",
    "PortalId",
    "UserId",
    "AccountId",
    "OmsQuoteId",
    "ExternalId",
    "PortalCatalogId",
    "AddressId",
    "ShippingId",
    "PaymentTypeId",
    "PaymentSettingId",
    "OmsOrderStateId",
    "OrderState",
    "OmsPaymentStateId",
    "PaymentStatus",
    "PaymentType",
    "PaymentDisplayName",
    "PaymentExternalId",
    "SubTotal",
    "TaxCost",
    "ShippingCost",
    "DiscountAmount",
    "CSRDiscountAmount",
    "GiftCardAmount",
    "Total",
    "OrderAmount",
    "OverDueAmount",
    "SalesTax",
    "VAT",
    "GST",
    "PST",
    "HST",
    "ImportDuty",
    "ShippingDiscount",
    "ShippingHandlingCharges",
    "ReturnCharges",
    "RemainingOrderAmount",
    "OrderTotalWithoutVoucher",
    "TotalAdditionalCost",
    "CurrencyCode",
    "CultureCode",
    "OrderTotalWithCurrency",
    "OrderDate",
    "OrderModifiedDate",
    "ShipDate",
    "Email",
    "PhoneNumber",
    "FirstName",
    "LastName",
    "UserName",
    "CreatedByName",
    "PaymentTransactionToken",
    "TransactionId",
    "CreditCardNumber",
    "CardType",
    "CreditCardExpMonth",
    "CreditCardExpYear",
    "PurchaseOrderNumber",
    "TrackingNumber",
    "TrackingUrl",
    "ShippingTypeName",
    "ShippingMethod",
    "BillingPostalCode",
    "ShippingPostalCode",
    "AdditionalInstructions",
    "CouponCode",
    "PromoDescription",
    "IpAddress",
    "Custom1",
    "Custom2",
]
USER_FIELDS = [
    "UserId",
    "AspNetUserId",
    "UserName",
    "LoginName",
    "Email",
    "FirstName",
    "LastName",
    "FullName",
    "PhoneNumber",
    "CompanyName",
    "ExternalId",
    "PortalId",
    "StoreName",
    "StoreCode",
    "AccountId",
    "AccountCode",
    "ProfileId",
    "RoleName",
    "EmailOptIn",
    "SMSOptIn",
    "IsGuestUser",
    "IsVerified",
    "BudgetAmount",
    "BillingAccountNumber",
    "CustomerPaymentGUID",
    "LocaleId",
]
ADDRESS_FIELDS = [
    "AddressId",
    "AccountId",
    "UserId",
    "DisplayName",
    "FirstName",
    "LastName",
    "CompanyName",
    "Address1",
    "Address2",
    "Address3",
    "CityName",
    "StateName",
    "StateCode",
    "PostalCode",
    "CountryName",
    "CountryCode",
    "PhoneNumber",
    "Mobilenumber",
    "FaxNumber",
    "EmailAddress",
    "IsDefaultBilling",
    "IsDefaultShipping",
    "ExternalId",
]

VALUES = {
    "OmsOrderId": 77,
    "OrderNumber": "SBX-1001",
    "UserId": 12,
    "PortalId": 1,
    "AccountId": 3,
    "Total": "42.50",
    "SubTotal": "38.00",
    "TaxCost": "3.00",
    "ShippingCost": "1.50",
    "CurrencyCode": "USD",
    "CultureCode": "en-US",
    "Email": "ana@example.com",
    "EmailAddress": "ana@example.com",
    "PhoneNumber": "+15550100",
    "FirstName": "Ana",
    "LastName": "Lima",
    "FullName": "Ana Lima",
    "UserName": "ana@example.com",
    "Address1": "1 Main St",
    "Address2": "Suite 4",
    "CityName": "Austin",
    "StateName": "Texas",
    "StateCode": "TX",
    "PostalCode": "78701",
    "CountryName": "United States",
    "CountryCode": "US",
    "CompanyName": "Lima Ltd",
    "OrderDate": "2026-12-01T10:00:00",
    "TransactionId": "ch_123",
    "CreditCardNumber": "4242",
    "PaymentSettingId": 7,
    "OrderState": "SUBMITTED",
    "PaymentStatus": "PENDING",
    "TrackingNumber": "1Z999",
    "BillingPostalCode": "78701",
    "ShippingPostalCode": "78702",
    "StoreName": "Sandbox Store",
}


def _values(fields: list[str]) -> dict:
    out = {}
    for name in fields:
        if name in VALUES:
            out[name] = VALUES[name]
        elif name.startswith("Is") or name.endswith("OptIn"):
            out[name] = False
        elif name.endswith("Id"):
            out[name] = 5
        elif any(w in name for w in ("Amount", "Cost", "Charges", "Total", "Discount")):
            out[name] = "0.00"
        else:
            out[name] = f"{name.lower()}-value"
    return out


def sample() -> dict:
    address = _values(ADDRESS_FIELDS)
    return {
        "order": {
            **_values(ORDER_FIELDS),
            "BillingAddress": address,
            "ShippingAddress": {**address, "PostalCode": "78702", "CityName": "Round Rock"},
        },
        "user": _values(USER_FIELDS),
    }


# Stripe field (its parameter's name, its type) → the Znode field meant.
PAIRS: tuple[tuple[str, str, str], ...] = (
    # PaymentIntent (stripe.md: amount in minor units from the order total, currency, ...)
    ("amount", "str", "order.Total"),
    ("currency", "str", "order.CurrencyCode"),
    ("receipt_email", "str", "order.Email"),
    ("order_number", "str", "order.OrderNumber"),
    ("znode_order_id", "int", "order.OmsOrderId"),
    ("znode_user_id", "int", "order.UserId"),
    ("description", "str", "order.AdditionalInstructions"),
    ("payment_setting_id", "int", "order.PaymentSettingId"),
    ("transaction_id", "str", "order.TransactionId"),
    # Customer (stripe.md A8)
    ("email", "str", "user.Email"),
    ("name", "str", "user.FullName"),
    ("phone", "str", "user.PhoneNumber"),
    ("line1", "str", "order.BillingAddress.Address1"),
    ("line2", "str", "order.BillingAddress.Address2"),
    ("city", "str", "order.BillingAddress.CityName"),
    ("state", "str", "order.BillingAddress.StateCode"),
    ("postal_code", "str", "order.BillingAddress.PostalCode"),
    ("country", "str", "order.BillingAddress.CountryCode"),
    ("company", "str", "order.BillingAddress.CompanyName"),
    ("tracking_number", "str", "order.TrackingNumber"),
)

# Where two Znode fields hold the same value in the same meaning, either is right.
ALSO_RIGHT = {
    "receipt_email": {"user.Email", "order.BillingAddress.EmailAddress", "order.UserName"},
    "email": {"order.Email", "order.BillingAddress.EmailAddress"},
    "phone": {"order.PhoneNumber", "order.BillingAddress.PhoneNumber"},
    "znode_user_id": {"user.UserId", "order.BillingAddress.UserId"},
    "postal_code": {"order.BillingPostalCode"},
    "country": {"order.BillingAddress.CountryName"},
    "name": {"order.BillingAddress.DisplayName"},
    "company": {"user.CompanyName"},
    "state": {"order.BillingAddress.StateName"},
}


def score(scorer_name: str, semantic) -> tuple[float, float]:
    from integrations.services.flow_design import InputSpec
    from integrations.services.mapping_assist import suggest

    document = sample()
    top1 = top3 = 0
    for target, type_text, meant in PAIRS:
        right = {meant, *ALSO_RIGHT.get(target, ())}
        spec = InputSpec(target, type_text, True, None, "")
        ranked = suggest([spec], document, per_input=3, semantic=semantic)[target]
        sources = [s.source for s in ranked]
        top1 += bool(sources[:1] and sources[0] in right)
        top3 += bool(right & set(sources[:3]))
        if not (right & set(sources[:3])):
            print(f"  miss [{scorer_name}] {target}: {sources} (meant {meant})")
    n = len(PAIRS)
    return top1 / n, top3 / n


def main() -> None:
    import django

    django.setup()
    from integrations.services.mapping_assist import semantic_scorer

    scorers = [("names+lexicon+values", None)]
    semantic = semantic_scorer()
    if semantic is not None:
        scorers.append(("with [ai] extra", semantic))
    else:
        print("the [ai] extra is not installed: scored without it only")
    for name, scorer in scorers:
        top1, top3 = score(name, scorer)
        print(f"{name}: top-1 {top1:.0%}, top-3 {top3:.0%} over {len(PAIRS)} Stripe fields")
        print(
            f"RESULT assisted_mapping scorer={name.replace(' ', '_')} top1={top1:.2f} "
            f"top3={top3:.2f} pairs={len(PAIRS)}"
        )


if __name__ == "__main__":
    main()
