"""WSGI entry point, with a fast lane for webhooks.

Requests under ``/webhooks/`` are machine-to-machine POSTs authenticated by their
signature and URL token: sessions, authentication, CSRF, messages, clickjacking
headers and history tracking do nothing for them. They go through a handler with the
same URLconf and views but without that middleware, which on this hot path costs
about as much as the intake work itself. Everything else takes the full stack.
"""

import os

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

WEBHOOK_PREFIX = "/webhooks/"


class WebhookHandler(WSGIHandler):
    """A WSGIHandler whose middleware chain is empty (exceptions still become 500s,
    request_started/request_finished still manage database connections)."""

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        get_response = self._get_response_async if is_async else self._get_response
        self._middleware_chain = convert_exception_to_response(get_response)

    def get_response(self, request):
        response = super().get_response(request)
        # What CommonMiddleware would add: without a length a keep-alive client
        # cannot tell where the answer ends.
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))
        return response


django_application = get_wsgi_application()
webhook_application = WebhookHandler()


def application(environ, start_response):
    if environ.get("PATH_INFO", "").startswith(WEBHOOK_PREFIX):
        return webhook_application(environ, start_response)
    return django_application(environ, start_response)
