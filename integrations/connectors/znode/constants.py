"""Znode event vocabulary.

Znode 10 webhook consumers send ``EventModule`` + ``EventName``; the 9.x poller emits
the same normalized types, so flows do not care where an event came from.
"""

NAMES = ("created", "updated", "deleted")

ORDER_CREATED = "order.created"
ORDER_UPDATED = "order.updated"
# A return (RMA, §5.1): stock Znode 10 lists no Return event module (§7.2), but a store
# may send one; the 9.x poller emits these from ``rmareturn/list``.
RETURN_CREATED = "return.created"
RETURN_UPDATED = "return.updated"
# A customer (UserModel, §6) and one of its address-book rows (AddressModel, §3.3): Znode
# 10 sends User and Address events (§7.2); the 9.x poller emits the same from
# ``customeraccount/list`` and ``customer/addresslist``.
USER_CREATED = "user.created"
USER_UPDATED = "user.updated"
ADDRESS_CREATED = "address.created"
ADDRESS_UPDATED = "address.updated"

SUPPORTED_EVENTS = frozenset(
    f"{m}.{n}" for m in ("order", "user", "address", "return") for n in NAMES
)

AUTHORIZATION_META = "HTTP_AUTHORIZATION"
SIGNATURE_META = "HTTP_X_ZNODE_SIGNATURE"

# Order-state names (``OrderState`` with the omsorderstate expand, upper case; §4.1).
CANCELED_ORDER_STATES = ("CANCELED", "CANCELLED")
SHIPPED_ORDER_STATE = "SHIPPED"

# Expands of ``GET orders/{id}`` (§3.3): the state's and the payment state's names.
EXPAND_ORDER_STATE = ("omsorderstate",)
EXPAND_PAYMENT_STATE = ("omspaymentstate",)
