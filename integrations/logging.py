import logging

from integrations.kernel.redaction import redact_text


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
        return True
