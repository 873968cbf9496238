"""The Stripe SDK's HTTP transport, on urllib3 directly.

stripe-python's default transport is a requests ``Session``; requests itself calls
urllib3, and on the way adds about 1 ms of CPU a call (hooks, cookies, the adapter,
header merging, environment lookups per request): measured with
``benchmarks/reconciliation.py``, some 15 % of a payout import's rate. This transport
keeps what matters of requests' behaviour:

- TLS verified against the SDK's own CA bundle (``stripe.ca_bundle_path``), as the
  SDK has requests do;
- the ``(connect, read)`` timeout;
- a proxy: the SDK's ``proxy`` option, else the environment's (``HTTPS_PROXY``,
  ``HTTP_PROXY``, ``NO_PROXY``, read when the transport is made), as requests reads it;
- ``Accept-Encoding: gzip, deflate`` sent and the answer decoded, as requests does;
- no retry of its own: the SDK retries (``max_network_retries``), by the rule its
  requests transport applies to network errors: a timeout or a failed connection is
  retried, a TLS failure or anything else is not;
- redirects are not followed (Stripe's API sends none; an answer is what it is).
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import stripe
import urllib3
from urllib3 import exceptions as u3

_RETRIED = (u3.TimeoutError, u3.NewConnectionError, u3.ProtocolError, u3.ProxyError)
"""Network errors worth another attempt (what requests raises as Timeout or
ConnectionError, which the SDK retries)."""

_ACCEPT_ENCODING = "gzip, deflate"


class Urllib3Client(stripe.HTTPClient):
    name = "urllib3"

    def __init__(
        self,
        timeout: float | tuple[float, float] = 80,
        verify_ssl_certs: bool = True,
        proxy: str | dict[str, str] | None = None,
    ) -> None:
        super().__init__(verify_ssl_certs=verify_ssl_certs, proxy=proxy)
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self._timeout = urllib3.Timeout(connect=connect, read=read)
        self._proxies: Mapping[str, str] = (
            self._proxy if self._proxy else urllib.request.getproxies_environment()
        )
        self._from_environment = not self._proxy
        self._pools: dict[str, urllib3.PoolManager] = {}
        self._lock = threading.Lock()

    def _pool(self, url: str) -> urllib3.PoolManager:
        """The pool for ``url``: through its proxy, if one applies, else direct."""
        parts = urlsplit(url)
        proxy = self._proxies.get(parts.scheme) or ""
        if proxy and self._from_environment and _bypassed(parts.hostname or "", self._proxies):
            proxy = ""
        with self._lock:
            pool = self._pools.get(proxy)
            if pool is None:
                tls: dict[str, Any] = (
                    {"cert_reqs": "CERT_REQUIRED", "ca_certs": stripe.ca_bundle_path}
                    if self._verify_ssl_certs
                    else {"cert_reqs": "CERT_NONE"}
                )
                options = {"retries": False, "timeout": self._timeout, **tls}
                pool = (
                    urllib3.ProxyManager(proxy, **options)
                    if proxy
                    else urllib3.PoolManager(**options)
                )
                self._pools[proxy] = pool
        return pool

    def request(
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        response = self._send(method, url, headers, post_data, stream=False)
        return response.data, response.status, response.headers

    def request_stream(
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None
    ) -> tuple[Any, int, Mapping[str, str]]:
        response = self._send(method, url, headers, post_data, stream=True)
        return response, response.status, response.headers

    def _send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any,
        *,
        stream: bool,
    ) -> urllib3.BaseHTTPResponse:
        sent = {"Accept-Encoding": _ACCEPT_ENCODING, **(headers or {})}
        try:
            return self._pool(url).request(
                method.upper(),
                url,
                headers=sent,
                body=post_data,
                redirect=False,
                preload_content=not stream,
            )
        except Exception as error:  # every failure becomes the SDK's error, as requests'
            raise _connection_error(error) from error

    def close(self) -> None:
        with self._lock:
            pools, self._pools = self._pools, {}
        for pool in pools.values():
            pool.clear()


def _bypassed(host: str, proxies: Mapping[str, str]) -> bool:
    """Whether ``NO_PROXY`` (as the environment gave it) exempts ``host``."""
    if "no" not in proxies:
        return False
    return bool(urllib.request.proxy_bypass_environment(host, proxies))


def _connection_error(error: Exception) -> stripe.APIConnectionError:
    """A network failure as the SDK's error, retried or not by its rule."""
    if isinstance(error, u3.SSLError):
        message = (
            "Could not verify Stripe's SSL certificate. Please make sure that your "
            "network is not intercepting certificates."
        )
        retry = False
    elif isinstance(error, _RETRIED):
        message = "Unexpected error communicating with Stripe."
        retry = True
    else:
        message = "Unexpected error communicating with Stripe (not retried)."
        retry = False
    return stripe.APIConnectionError(
        f"{message}\n\n(Network error: {type(error).__name__}: {error})", should_retry=retry
    )
