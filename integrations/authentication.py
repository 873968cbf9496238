"""HTTP Basic for the API, with django-axes' lockout said as such: a locked-out
username and address get 429 with when to try again, not a 401 that invites another
guess; a right password resets the count of failures, as an admin login does."""

from __future__ import annotations

from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from drf_spectacular.authentication import BasicScheme
from rest_framework import exceptions
from rest_framework.authentication import BasicAuthentication


def client_address(request: Any) -> str | None:
    """The address a login came from, for the lockout: behind ``TRUSTED_PROXY_COUNT``
    proxies of ours, the entry that many from the right of X-Forwarded-For (the first
    of our proxies wrote it; entries further left are whatever the client sent), else
    the connection's own address."""
    meta = request.META
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        chain = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        chain = [part for part in chain if part]
        if len(chain) >= proxies:
            return chain[-proxies]
    return meta.get("REMOTE_ADDR")


class LockedOut(exceptions.Throttled):
    default_detail = "Too many failed logins for this username from this address."


class ThrottledBasicAuthentication(BasicAuthentication):
    def authenticate_credentials(self, userid: str, password: str, request: Any = None):
        try:
            user, auth = super().authenticate_credentials(userid, password, request)
        except exceptions.AuthenticationFailed:
            if request is not None and getattr(request, "axes_locked_out", False):
                wait = int(settings.AXES_COOLOFF_TIME.total_seconds())
                raise LockedOut(wait=wait) from None
            raise
        if request is not None:
            # Basic auth calls no login(): reset the failures as a successful login does.
            AxesProxyHandler.user_logged_in(type(self), request, user)
        return user, auth


class ThrottledBasicScheme(BasicScheme):
    """The OpenAPI schema's name for it: HTTP Basic (drf-spectacular)."""

    target_class = ThrottledBasicAuthentication
    priority = 0
