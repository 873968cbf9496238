"""One error taxonomy for the engine, the connectors and the domain actions.

Only ``retryable`` decides whether a failed job is retried. ``retry_after`` (seconds)
overrides the computed backoff when an upstream told us how long to wait.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation


class IntegrationError(Exception):
    """Base class. Not retryable unless a subclass says so."""

    retryable: bool = False
    code: str = "integration_error"

    def __init__(
        self,
        message: str = "",
        *,
        retry_after: float | None = None,
        extra: dict | None = None,
        http_status: int | None = None,
    ):
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.message = message or (self.__class__.__doc__ or self.code).strip()
        self.retry_after = retry_after
        self.extra = extra or {}
        # The HTTP status the system answered, when it answered: callers decide on
        # it, never on the message text.
        self.http_status = http_status


# --- retryable -----------------------------------------------------------------------
class TransientError(IntegrationError):
    """A temporary failure; retried with backoff."""

    retryable = True
    code = "transient"


class ConnectorTimeout(TransientError):
    """The external system did not answer in time."""

    code = "timeout"


class ConnectorUnavailable(TransientError):
    """The external system could not be reached or answered 5xx."""

    code = "unavailable"


class RateLimited(TransientError):
    """The external system asked us to slow down (429)."""

    code = "rate_limited"


class ConflictRetry(TransientError):
    """A concurrent change upstream (409); safe to retry."""

    code = "conflict"


# --- not retryable: quarantine at once -----------------------------------------------
class PermanentError(IntegrationError):
    """A failure that will not fix itself; the job is quarantined for an operator."""

    code = "permanent"


class BadRequest(PermanentError):
    """The external system rejected the request (4xx)."""

    code = "bad_request"


class IdempotencyMismatch(PermanentError):
    """The idempotency key was used before with other parameters."""

    code = "idempotency_mismatch"


class Unauthorized(PermanentError):
    """Credentials were refused."""

    code = "unauthorized"


class NotFound(PermanentError):
    """The external object does not exist."""

    code = "not_found"


class BusinessRuleError(PermanentError):
    """The external system refused the operation for a business reason."""

    code = "business_rule"


class PaymentDeclined(BusinessRuleError):
    """The card was declined: a business outcome, never retried by the engine."""

    code = "card_declined"

    def __init__(
        self,
        message: str,
        *,
        decline_code: str = "",
        error_code: str = "",
        payment_intent: str = "",
        charge: str = "",
    ):
        super().__init__(message)
        self.decline_code = decline_code
        self.error_code = error_code
        self.payment_intent = payment_intent
        self.charge = charge


class DataError(PermanentError):
    """The input data is malformed or incomplete."""

    code = "bad_data"


class MappingError(DataError):
    """A mapping could not build an action's input (missing required field, bad expression)."""

    code = "mapping"


class ActionNotRegistered(PermanentError):
    """A flow step names an action that no installed app registered."""

    code = "unknown_action"


class ConnectorConfigurationError(ImproperlyConfigured):
    """A connection is missing something it needs (credentials, base URL).

    Kept outside the IntegrationError tree on purpose, like anymail's configuration
    errors, so nothing can swallow it as an ordinary failure. The engine quarantines
    jobs that raise it.
    """

    retryable = False
    code = "configuration"


class WebhookVerificationError(SuspiciousOperation):
    """A webhook failed authentication; the request is answered 400 and not stored."""


class WebhookPayloadError(ValueError):
    """A verified webhook body is not something we can read (bad JSON, no event id)."""


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed attempt should be retried.

    Our own errors say so themselves. Of foreign exceptions only lost database
    connections are retried; anything else is a bug or bad data, and retrying it
    would only repeat the failure, so it is quarantined with its traceback.
    """
    if hasattr(exc, "retryable"):
        return bool(exc.retryable)
    from django.db import InterfaceError, OperationalError

    return isinstance(exc, OperationalError | InterfaceError)


def error_summary(exc: BaseException) -> dict[str, Any]:
    return {
        "class": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "code": getattr(exc, "code", "unexpected"),
        "message": str(exc)[:2000],
        "retryable": is_retryable(exc),
    }
