"""WSGI entry point, with a fast lane for webhooks.

Requests under ``/webhooks/`` are machine-to-machine POSTs authenticated by their
signature and URL token: sessions, authentication, CSRF, messages, clickjacking
headers and history tracking do nothing for them. They go through a handler with the
same URLconf and views but without that middleware, which on this hot path costs
about as much as the intake work itself. Everything else takes the full stack.

What the fast lane keeps: the Host header is checked against ``ALLOWED_HOSTS`` (400
otherwise, as on the full stack) and Django's ``SecurityMiddleware`` runs (HTTPS
redirect when ``SECURE_SSL_REDIRECT`` is on, HSTS on secure requests, nosniff,
referrer and opener policies). And whatever goes wrong, the answer is a bare JSON
error, never a debug page, whatever ``DEBUG`` says.
"""

import logging
import os

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import got_request_exception
from django.core.wsgi import get_wsgi_application
from django.http import Http404, JsonResponse
from django.middleware.security import SecurityMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

WEBHOOK_PREFIX = "/webhooks/"

request_logger = logging.getLogger("django.request")


def _guarded(get_response):
    """The fast lane's only middleware around SecurityMiddleware: the Host header is
    checked as ``request.get_host()`` checks it on the full stack (ALLOWED_HOSTS),
    before any lookup or write, and every exception becomes a JSON answer (what
    convert_exception_to_response does, minus the debug pages it renders with DEBUG).
    """

    def inner(request):
        try:
            request.get_host()  # DisallowedHost (a SuspiciousOperation) -> 400
            return get_response(request)
        except Http404:
            return JsonResponse({"error": "unknown endpoint"}, status=404)
        except PermissionDenied:
            return JsonResponse({"error": "forbidden"}, status=403)
        except SuspiciousOperation as exc:
            logging.getLogger(f"django.security.{type(exc).__name__}").error(str(exc))
            return JsonResponse({"error": "bad request"}, status=400)
        except Exception as exc:
            request_logger.error("Internal Server Error: %s", request.path, exc_info=exc)
            got_request_exception.send(sender=None, request=request)
            response = JsonResponse({"error": "internal error"}, status=500)
            response._has_been_logged = True  # logged above (the filter masks it)
            return response

    return inner


class WebhookHandler(WSGIHandler):
    """A WSGIHandler whose middleware chain is the host check and SecurityMiddleware
    only (request_started/request_finished still manage database connections). Sync
    only: gunicorn and runserver serve WSGI."""

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = _guarded(SecurityMiddleware(self._get_response))

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
