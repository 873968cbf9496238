import pytest

from payments.choices import OrderState, PaymentStatus
from payments.models import Order, Payment


@pytest.mark.parametrize(
    ("start", "target", "allowed"),
    [
        (OrderState.NEW, OrderState.PAYMENT_PENDING, True),
        (OrderState.PAYMENT_PENDING, OrderState.PAYMENT_FAILED, True),
        (OrderState.PAYMENT_FAILED, OrderState.PAYMENT_PENDING, True),  # pays again
        (OrderState.PAYMENT_FAILED, OrderState.PAID, True),
        (OrderState.AUTHORIZED, OrderState.PAID, True),
        (OrderState.AUTHORIZED, OrderState.PAYMENT_FAILED, False),
        (OrderState.PAID, OrderState.PAYMENT_FAILED, False),  # failed after succeeded
        (OrderState.PAID, OrderState.PAYMENT_PENDING, False),  # late "created"
        (OrderState.PAID, OrderState.CANCELED, False),
        (OrderState.CANCELED, OrderState.PAID, False),
        (OrderState.PAID, OrderState.PAID, False),  # duplicates change nothing
    ],
)
def test_orders_never_move_backwards(start, target, allowed):
    assert Order(state=start).can_move_to(target) is allowed


@pytest.mark.parametrize(
    ("start", "target", "allowed"),
    [
        (PaymentStatus.REQUIRES_PAYMENT_METHOD, PaymentStatus.PROCESSING, True),
        (PaymentStatus.PROCESSING, PaymentStatus.SUCCEEDED, True),
        (PaymentStatus.REQUIRES_CAPTURE, PaymentStatus.SUCCEEDED, True),
        (PaymentStatus.SUCCEEDED, PaymentStatus.REQUIRES_PAYMENT_METHOD, False),
        (PaymentStatus.SUCCEEDED, PaymentStatus.CANCELED, False),
        (PaymentStatus.REQUIRES_CAPTURE, PaymentStatus.PROCESSING, False),
    ],
)
def test_payments_never_move_backwards(start, target, allowed):
    assert Payment(status=start).can_move_to(target) is allowed
