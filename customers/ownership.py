"""Which side owns each customer field when Znode and Stripe disagree: an
operator-editable table (``customer-field-owners``), shipped with this default."""

from __future__ import annotations

from integrations.kernel import exceptions as exc
from integrations.models import LookupTable
from integrations.services.flows import register_default_lookup

OWNERS_TABLE = "customer-field-owners"
ZNODE, STRIPE, NEWEST = "znode", "stripe", "newest"
FIELDS = ("email", "name", "phone", "billing_address", "shipping_address", "payment_methods")

# Znode is the shop's record of its customers (profile and addresses); Stripe is the
# record of how they pay (saved cards).
DEFAULT_OWNERS = {
    "email": ZNODE,
    "name": ZNODE,
    "phone": ZNODE,
    "billing_address": ZNODE,
    "shipping_address": ZNODE,
    "payment_methods": STRIPE,
}

register_default_lookup(
    OWNERS_TABLE,
    DEFAULT_OWNERS,
    "Customer field → the side whose value wins when both Znode and Stripe changed it "
    "since they last agreed: znode, stripe, or newest (the later change wins). A change "
    "made on one side only always reaches the other. A field not listed keeps the "
    "default owner.",
)


def field_owners() -> dict[str, str]:
    """Every field's owner: the operators' table over the default. A table naming
    another side than znode, stripe or newest, or a field the profile does not have,
    is a configuration error, said clearly."""
    table = LookupTable.objects.filter(key=OWNERS_TABLE).first()
    entries = table.entries if table and isinstance(table.entries, dict) else {}
    owners = dict(DEFAULT_OWNERS)
    for field, owner in entries.items():
        side = str(owner).strip().lower()
        if side not in (ZNODE, STRIPE, NEWEST):
            raise exc.DataError(
                f"lookup table {OWNERS_TABLE}: {field!r} is owned by {owner!r}; "
                f"use {ZNODE}, {STRIPE} or {NEWEST}"
            )
        if field not in FIELDS:
            raise exc.DataError(
                f"lookup table {OWNERS_TABLE}: {field!r} is no customer field; "
                f"use one of {', '.join(FIELDS)}"
            )
        owners[str(field)] = side
    return owners
