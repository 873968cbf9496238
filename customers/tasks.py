"""django-q2 entry points of the customer sync. Thin: each calls one service."""

from customers.sweep import customers_sweep
from integrations.services.jobs import retry_waker


def sweep_address_books() -> dict[str, int]:
    retry_waker.ensure()
    return customers_sweep()
