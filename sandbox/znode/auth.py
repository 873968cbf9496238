"""Authentication.

- Znode 9.x: ``Authorization: Basic base64("<domain>|<key>")``. Like BaseController the
  first 6 characters are dropped unread, the rest base64-decoded and split on ``|``;
  the domain must be an active ZnodeDomain row and the key equal its ApiKey
  (case-sensitive). Failure: 401 with ErrorCode 32.
- ``GET token/generatetoken`` (Basic) gives ``{"Response": "<token>"}``; with
  ``token_auth`` on (config, EnableTokenBasedAuthorization) every other call needs a valid
  unexpired ``Token`` header as well as Basic: 401 ErrorCode 32 "Token is invalid" for a
  missing or unknown token, "Token is expired" for an expired one.
- OAuth 2.0 client credentials for deployments behind an API gateway:
  ``POST oauth/token`` (form) -> ``{"access_token", "token_type": "Bearer", "expires_in"}``;
  ``Authorization: Bearer <token>`` is then accepted instead of Basic.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl, unquote

from sandbox.http import Request, Response
from sandbox.znode.wire import raw, respond, unauthorized

_EXEMPT = ("/oauth/token",)
_EXPIRED_TOKENS_KEPT_SECONDS = 3600.0
_TOKENS_KEPT = 10000


class AuthMixin:
    state: dict[str, Any]

    def basic_domain(self, request: Request) -> dict | None:
        header = request.headers.get("Authorization") or ""
        if len(header) <= 6 or header[:7].lower() == "bearer ":
            return None
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        parts = decoded.split("|")
        if len(parts) < 2:
            return None
        domain_name, key = parts[0], parts[1]
        for row in self.state["domains"]:
            if row["DomainName"].lower() == domain_name.lower() and row["IsActive"]:
                if hmac.compare_digest(row["ApiKey"].encode(), key.encode()):
                    return row
                return None
        return None

    def bearer_token(self, request: Request) -> tuple[bool, dict | None]:
        """(is a Bearer header, the live token record or None)."""
        header = request.headers.get("Authorization") or ""
        if header[:7].lower() != "bearer ":
            return False, None
        token = header[7:].strip()
        record = self.state["oauth_tokens"].get(token)
        if record is None or record["expires_at"] <= time.time():
            return True, None
        return True, record

    def authenticate(self, request: Request) -> Response | None:
        path = request.path.lower().rstrip("/")
        if path.endswith(_EXEMPT):
            return None
        is_bearer, record = self.bearer_token(request)
        if is_bearer:
            if record is None:
                return unauthorized(
                    "The access token is invalid or has expired",
                    **{"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            return None
        domain = self.basic_domain(request)
        if domain is None:
            return unauthorized()
        if self.state["config"].get("token_auth") and not path.endswith("/token/generatetoken"):
            token = request.headers.get("Token") or ""
            live = self.state["api_tokens"].get(token)
            if live is None:
                return unauthorized("Token is invalid")
            if live["expires_at"] <= time.time():
                return unauthorized("Token is expired")
        return None

    # --- routes ------------------------------------------------------------------------
    def register_auth_routes(self) -> None:
        self.get_route("/token/generatetoken", self.generate_token)
        self.post_route("/oauth/token", self.oauth_token)

    def generate_token(self, request: Request) -> Response:
        domain = self.basic_domain(request)
        if domain is None:
            return respond({"Response": "Web API Key Not Found"}, 404)
        now = time.time()
        # The real token carries its own expiry (an encrypted domain|key|random|ticks), so
        # an expired one always reads "expired": keep expired tokens for a while.
        kept = [
            (t, r)
            for t, r in self.state["api_tokens"].items()
            if r["expires_at"] > now - _EXPIRED_TOKENS_KEPT_SECONDS
        ]
        self.state["api_tokens"] = dict(kept[-_TOKENS_KEPT:])
        token = base64.b64encode(secrets.token_bytes(48)).decode()
        ttl = float(self.state["config"]["api_token_ttl"])
        self.state["api_tokens"][token] = {"domain": domain["DomainName"], "expires_at": now + ttl}
        return respond({"Response": token})

    def oauth_token(self, request: Request) -> Response:
        content_type = (request.headers.get("Content-Type") or "").lower()
        form: dict[str, str]
        if "json" in content_type:
            data = request.json() if request.body else {}
            form = {str(k): str(v) for k, v in (data or {}).items()}
        else:
            form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("Authorization") or ""
        used_basic = header[:6].lower() == "basic "
        if used_basic:  # client_secret_basic (RFC 6749 2.3.1)
            try:
                pair = base64.b64decode(header[6:].strip()).decode("utf-8")
                client_id, _, client_secret = (unquote(p) for p in pair.partition(":"))
            except (binascii.Error, UnicodeDecodeError, ValueError):
                client_id = client_secret = None
        grant = form.get("grant_type")
        if not grant:
            return _oauth_error("invalid_request", "grant_type is required", 400)
        if grant != "client_credentials":
            return _oauth_error("unsupported_grant_type", f"{grant} is not supported", 400)
        client = next((c for c in self.state["oauth_clients"] if c["client_id"] == client_id), None)
        if client is None or not hmac.compare_digest(
            client["client_secret"].encode(), (client_secret or "").encode()
        ):
            extra = {"WWW-Authenticate": 'Basic realm="znode"'} if used_basic else {}
            return _oauth_error("invalid_client", "client authentication failed", 401, **extra)
        requested = (form.get("scope") or "").split()
        if any(s not in client["scopes"] for s in requested):
            return _oauth_error("invalid_scope", "scope not allowed for this client", 400)
        scope = " ".join(requested or client["scopes"])
        now = time.time()
        self.state["oauth_tokens"] = {
            t: r for t, r in self.state["oauth_tokens"].items() if r["expires_at"] > now
        }
        ttl = float(self.state["config"]["token_ttl"])
        token = secrets.token_urlsafe(32)
        self.state["oauth_tokens"][token] = {
            "client_id": client["client_id"],
            "scope": scope,
            "expires_at": now + ttl,
        }
        return raw(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": math.ceil(ttl),
                "scope": scope,
            },
            **{"Cache-Control": "no-store", "Pragma": "no-cache"},
        )


def _oauth_error(code: str, description: str, status: int, **headers: str) -> Response:
    return raw(
        {"error": code, "error_description": description},
        status,
        **{"Cache-Control": "no-store", **headers},
    )
