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
