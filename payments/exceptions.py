"""Errors of order-to-cash that decide a job's fate (the engine's taxonomy)."""

from __future__ import annotations

from integrations.kernel import exceptions as exc


class OrderNotYetKnown(exc.TransientError):
    """A Stripe event overtook the Znode order it belongs to; retried until the order
    has been fetched (events arrive in any order)."""

    code = "order_not_yet_known"


class CannotCollect(exc.DataError):
    """A card order the platform cannot collect as configured; the job is
    quarantined with the reason, and Znode gets a note saying why."""

    code = "cannot_collect"


class OverRefund(exc.BusinessRuleError):
    """A refund above what the order still holds (captured less refunded, refunding
    and disputed): refused before any Stripe call, quarantined for a person."""

    code = "over_refund"


class RefundFailed(exc.BusinessRuleError):
    """Stripe could not give the money back (``failure_reason``): the return is
    reopened for a person and the job quarantined with the reason."""

    code = "refund_failed"
