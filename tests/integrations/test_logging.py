import io
import logging

from integrations.logging import RedactSecretsFilter


def test_secrets_are_masked_in_log_records(caplog):
    logger = logging.getLogger("integrations.test")
    logger.addFilter(RedactSecretsFilter())
    try:
        with caplog.at_level(logging.INFO):
            logger.info(
                "calling with %s and %s, header %s",
                "sk_live_51abcdefSECRET",
                "whsec_abcdefSECRET",
                "Basic c3RvcmV8a2V5c2VjcmV0",
            )
    finally:
        logger.filters.clear()
    assert "SECRET" not in caplog.text
    assert "c3RvcmV8a2V5c2VjcmV0" not in caplog.text
    assert caplog.text.count("[redacted]") == 3


def test_client_secrets_of_payment_and_setup_intents_are_masked():
    from integrations.kernel.redaction import redact_text

    text = redact_text("pi_3Abc_secret_XyZ and seti_1Def_secret_QrS")
    assert text == "[redacted] and [redacted]"


def _handler_output(log) -> str:
    """What the configured console handler (with the filter) would print."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecretsFilter())
    logger = logging.getLogger("integrations.test.tracebacks")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        log(logger)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    return stream.getvalue()


def test_tracebacks_are_masked_too():
    """The exception text of a record (its formatted traceback) is masked like its
    message: an exception that quotes a key must not print it."""

    def log(logger):
        try:
            raise RuntimeError(
                "Stripe said no to sk_live_51abcdefSECRET via redis://:pw-SECRET@h:6379/0"
            )
        except RuntimeError:
            logger.exception("call failed")

    output = _handler_output(log)
    assert "Traceback (most recent call last)" in output
    assert "RuntimeError: Stripe said no to [redacted] via redis://:[redacted]@h:6379/0" in output
    assert "SECRET" not in output


def test_stack_info_is_masked():
    output = _handler_output(
        lambda logger: logger.warning("where %s", "whsec_abcdefSECRET", stack_info=True)
    )
    assert "Stack (most recent call last)" in output
    assert "SECRET" not in output


def test_connection_url_passwords_are_masked_in_messages():
    from integrations.kernel.redaction import redact_text

    assert (
        redact_text("broker redis://:p@ss@cache:6379/0 db postgres://app:pw@db/app http://h:80/")
        == "broker redis://:[redacted]@cache:6379/0 db postgres://app:[redacted]@db/app http://h:80/"
    )


def test_djangos_own_records_go_through_the_redaction_filter_only():
    """With DEBUG on, Django's default console handler would print request tracebacks
    unfiltered: the ``django`` logger uses the project's console handler alone."""
    import logging

    from django.conf import settings
    from django.utils.log import configure_logging

    from integrations.logging import RedactSecretsFilter

    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)  # as at start-up
    django_logger = logging.getLogger("django")
    assert django_logger.propagate is False and django_logger.handlers
    for handler in django_logger.handlers:
        assert any(isinstance(f, RedactSecretsFilter) for f in handler.filters)
