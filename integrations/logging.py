"""Keep secrets out of logs and error reports.

:class:`RedactSecretsFilter` masks credentials in every record the console handler
writes: the message, the exception text (the formatted traceback) and the stack.
:class:`RedactingExceptionReporterFilter` is ``DEFAULT_EXCEPTION_REPORTER_FILTER``:
Django's error reports (debug page, admin emails) hide the usual setting names and,
on top, passwords inside connection URLs (``REDIS_URL``, ``DATABASE_URL``, a broker
URL in ``Q_CLUSTER``) and credential-looking values in frame locals.
"""

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from django.views.debug import SafeExceptionReporterFilter

from integrations.kernel.context import current_run
from integrations.kernel.redaction import redact_text

_formatter = logging.Formatter()


class RedactSecretsFilter(logging.Filter):
    """Masks anything that looks like a credential in every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is still logged by the handler
            return True
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        # The traceback is text too: formatters print record.exc_text when it is set
        # (and only format exc_info themselves when it is not), so it is formatted and
        # masked once here. exc_info stays for handlers that read the exception.
        if record.exc_info and not record.exc_text:
            record.exc_text = _formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


class CorrelationFilter(logging.Filter):
    """Puts on every record what it was done for: ``correlation_id`` (the business
    reference, an order number: the same in the webhook that brought the event, the
    jobs it made and the API calls they made), ``job_id`` and ``attempt_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        run = current_run.get()
        record.correlation_id = run.reference
        record.job_id = run.job_id
        record.attempt_id = run.attempt_id
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (``LOG_FORMAT=json``): time (UTC, ISO 8601), level,
    logger, message, the correlation fields when set, and the traceback (masked by
    :class:`RedactSecretsFilter` before it gets here)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("correlation_id", "job_id", "attempt_id"):
            value = getattr(record, name, None)
            if value not in (None, ""):
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


class RedactingExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, plus: no password of a URL and no credential-looking value
    (``sk_live_…``, ``whsec_…``, ``Bearer …``) in settings or frame locals."""

    def cleanse_setting(self, key, value):
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):
            return redact_text(cleansed)
        return cleansed

    def get_traceback_frame_variables(self, request, tb_frame):
        return [
            (
                name,
                self.cleanse_setting("", value)
                if isinstance(value, str | dict | list | tuple)
                else value,
            )
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]


# The loggers of a run's every call: what a command that runs services in process (the
# demo) keeps out of its own output.
CALL_LOGGERS = ("stripe", "integrations", "customers", "payments", "reconciliation")


@contextmanager
def calls_quieted(names: tuple[str, ...] = CALL_LOGGERS) -> Iterator[None]:
    """Only warnings and errors of ``names`` while the block runs."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
