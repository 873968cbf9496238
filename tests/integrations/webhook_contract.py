"""The webhook security contract every connector's webhook tests reuse.

A connector test module subclasses :class:`WebhookSecurityContract` and provides
fixtures: ``connection`` (with two active secrets), ``valid_payload`` (a fresh,
unique event) and the methods ``deliver(client, connection, payload, **how)`` and
``forge(...)`` variants. Every rejection must leave the inbox and the jobs untouched.
"""

from __future__ import annotations

import json

import pytest

from integrations.models import InboundEvent, Job


def snapshot():
    return (
        InboundEvent.objects.count(),
        Job.objects.count(),
        list(InboundEvent.objects.values_list("deliveries", flat=True)),
    )


@pytest.mark.django_db
class WebhookSecurityContract:
    # --- to provide ---------------------------------------------------------------
    def deliver(self, client, connection, payload, **how):  # pragma: no cover
        raise NotImplementedError

    def deliver_with_wrong_secret(self, client, connection, payload):  # pragma: no cover
        raise NotImplementedError

    def deliver_unsigned(self, client, connection, payload):  # pragma: no cover
        raise NotImplementedError

    def deliver_with_retired_secret(self, client, connection, payload):  # pragma: no cover
        """Sign with the second active secret (the one being rotated out)."""
        raise NotImplementedError

    def tamper(self, payload) -> str:
        """Body that differs from what was signed."""
        return json.dumps(payload).replace("}", ', "tampered": true}', 1)

    # --- the contract ---------------------------------------------------------------
    def test_valid_delivery_is_stored_once(self, client, connection, valid_payload):
        response = self.deliver(client, connection, valid_payload)
        assert response.status_code == 200, response.content
        assert InboundEvent.objects.filter(connection=connection).count() == 1

    def test_duplicate_delivery_stores_one_row(self, client, connection, valid_payload):
        first = self.deliver(client, connection, valid_payload)
        second = self.deliver(client, connection, valid_payload)
        assert (first.status_code, second.status_code) == (200, 200)
        assert second.json()["duplicate"] is True
        event = InboundEvent.objects.get(connection=connection)
        assert event.deliveries == 2

    def test_missing_signature_is_rejected_and_nothing_stored(
        self, client, connection, valid_payload
    ):
        before = snapshot()
        response = self.deliver_unsigned(client, connection, valid_payload)
        assert response.status_code == 400
        assert snapshot() == before

    def test_wrong_secret_is_rejected_and_nothing_stored(self, client, connection, valid_payload):
        before = snapshot()
        response = self.deliver_with_wrong_secret(client, connection, valid_payload)
        assert response.status_code == 400
        assert snapshot() == before

    def test_rotated_secret_is_still_accepted(self, client, connection, valid_payload):
        response = self.deliver_with_retired_secret(client, connection, valid_payload)
        assert response.status_code == 200
        assert InboundEvent.objects.filter(connection=connection).count() == 1

    def test_unknown_token_is_404_and_nothing_stored(self, client, connection, valid_payload):
        before = snapshot()
        connection.url_token = "not-the-token"  # in memory only: wrong URL
        response = self.deliver(client, connection, valid_payload)
        assert response.status_code == 404
        assert snapshot() == before

    def test_oversized_body_is_413_and_nothing_stored(
        self, client, connection, valid_payload, settings
    ):
        settings.INTEGRATIONS = {**settings.INTEGRATIONS, "WEBHOOK_MAX_BODY_BYTES": 64}
        before = snapshot()
        response = self.deliver(client, connection, valid_payload)
        assert response.status_code == 413
        assert snapshot() == before

    def test_disabled_connection_is_503_and_nothing_stored(self, client, connection, valid_payload):
        connection.enabled = False
        connection.save()
        before = snapshot()
        response = self.deliver(client, connection, valid_payload)
        assert response.status_code == 503
        assert snapshot() == before

    def test_get_is_refused(self, client, connection):
        assert client.get(connection.webhook_path).status_code == 405
