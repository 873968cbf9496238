"""``/v1/webhook_endpoints``: endpoints made through the API are delivered to like those
registered with the control API (``POST /_sandbox/webhooks/stripe``)."""

from __future__ import annotations

from sandbox.stripe import params as p
from sandbox.stripe.errors import invalid, missing_param
from sandbox.stripe.store import random_token
from sandbox.webhooks import Endpoint


class WebhookEndpointsMixin:
    def _register(self, endpoint: dict) -> None:
        events = [] if "*" in endpoint["enabled_events"] else list(endpoint["enabled_events"])
        self.webhooks.add_endpoint(
            Endpoint(url=endpoint["url"], secret=endpoint["_secret"], events=events)
        )

    def _unregister(self, url: str) -> None:
        with self.webhooks.lock:
            self.webhooks.endpoints = [e for e in self.webhooks.endpoints if e.url != url]

    def _endpoint_changes(self, params: dict, endpoint: dict) -> None:
        if "url" in params:
            url = p.text(params, "url", required=True, max_length=5000)
            if not url.startswith(("http://", "https://")):
                raise invalid("Invalid URL: must be an http(s) URL", "url", "url_invalid")
            endpoint["url"] = url
        if "enabled_events" in params:
            events = p.string_list(params, "enabled_events") or []
            if not events:
                raise invalid("You must specify at least one event type.", "enabled_events")
            endpoint["enabled_events"] = events
        if "description" in params:
            endpoint["description"] = p.text(params, "description", max_length=5000)
        if "disabled" in params:
            endpoint["status"] = "disabled" if p.boolean(params, "disabled") else "enabled"
        new_metadata = p.metadata(params, endpoint["metadata"])
        if new_metadata is not None:
            endpoint["metadata"] = new_metadata

    def api_webhook_endpoints_create(self, call) -> dict:
        params = call.params
        p.check_known(
            params, ("api_version", "connect", "description", "enabled_events", "metadata", "url")
        )
        for required in ("url", "enabled_events"):
            if not params.get(required):
                raise missing_param(required)
        secret = f"whsec_{random_token(32)}"
        endpoint = {
            "id": self.new_id("we"),
            "object": "webhook_endpoint",
            "api_version": p.text(params, "api_version"),
            "application": None,
            "created": self.now(),
            "description": None,
            "enabled_events": [],
            "livemode": False,
            "metadata": {},
            "status": "enabled",
            "url": "",
            "_secret": secret,
        }
        self._endpoint_changes(params, endpoint)
        self.insert(endpoint)
        self._register(endpoint)
        return {**self.render(endpoint), "secret": secret}

    def api_webhook_endpoints_list(self, call) -> dict:
        p.check_known(call.params, ("ending_before", "limit", "starting_after"))
        items = self.newest_first("webhook_endpoint")
        return self.list_body(items, call.params, "/v1/webhook_endpoints")

    def api_webhook_endpoints_retrieve(self, call) -> dict:
        return self.render(self.get("webhook_endpoint", call.path["id"]), call.expand)

    def api_webhook_endpoints_update(self, call) -> dict:
        endpoint = self.get("webhook_endpoint", call.path["id"])
        p.check_known(call.params, ("description", "disabled", "enabled_events", "metadata", "url"))
        old_url = endpoint["url"]
        scratch = dict(endpoint)
        self._endpoint_changes(call.params, scratch)
        endpoint.update(scratch)
        self._unregister(old_url)
        if endpoint["status"] == "enabled":
            self._register(endpoint)
        return self.render(endpoint, call.expand)

    def api_webhook_endpoints_delete(self, call) -> dict:
        endpoint = self.get("webhook_endpoint", call.path["id"])
        self._unregister(endpoint["url"])
        endpoint["_deleted"] = True
        return self.render(endpoint)
