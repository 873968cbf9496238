"""A very small HTTP toolkit: request/response objects, a router, form decoding."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson


class Headers(dict):
    """Case-insensitive header mapping (keys stored lower-case)."""

    def __init__(self, items=()):
        super().__init__((k.lower(), v) for k, v in dict(items).items())

    def get(self, key, default=None):
        return super().get(key.lower(), default)

    def __getitem__(self, key):
        return super().__getitem__(key.lower())

    def __contains__(self, key):
        return super().__contains__(key.lower())


@dataclass
class Request:
    method: str
    target: str
    headers: Headers
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query_string(self) -> str:
        return urlsplit(self.target).query

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.query_string, keep_blank_values=True))

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body)

    def form(self) -> dict[str, Any]:
        """Stripe-style nested form: a[b]=1&a[c][]=x&list[0][k]=v (also for GET queries)."""
        source = self.body.decode() if self.body else self.query_string
        return decode_nested_form(source)


_STDLIB_ONLY = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def json_bytes(body: Any) -> bytes:
    """``body`` as JSON (UTF-8): by orjson, some five times faster than the standard
    library on a large page; what orjson does not encode (a Decimal, an integer past
    64 bits) by the standard library."""
    try:
        # What the standard library refuses (a datetime, a dataclass) is refused here too.
        return orjson.dumps(body, option=_STDLIB_ONLY)
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(body, check_circular=False).encode()


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


def json_response(body: Any, status: int = 200, **headers: str) -> Response:
    return Response(status, body, {"Content-Type": "application/json", **headers})


_KEY = re.compile(r"([^\[\]]+)|\[([^\[\]]*)\]")


def decode_nested_form(source: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for raw_key, value in parse_qsl(source, keep_blank_values=True):
        parts = [
            m.group(1) if m.group(1) is not None else m.group(2) for m in _KEY.finditer(raw_key)
        ]
        _assign(result, parts, value)
    return _listify(result)


def _assign(node: dict, parts: list[str], value: str) -> None:
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "":  # a[] appends
            part = str(len(node))
        if last:
            node[part] = value
        else:
            node = node.setdefault(part, {})


def _listify(node: Any) -> Any:
    """Dicts whose keys are 0..n-1 become lists."""
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            keys = sorted(node, key=int)
            if [int(k) for k in keys] == list(range(len(keys))):
                return [node[k] for k in keys]
        return node
    return node


Handler = Callable[[Request], Response]


class Router:
    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern, Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern.rstrip("/")) + "/?$"
        self.routes.append((method.upper(), re.compile(regex, re.IGNORECASE), handler))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(method, pattern, handler)
            return handler

        return register

    def match(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        """(handler, params, path_exists)."""
        exists = False
        for route_method, regex, handler in self.routes:
            found = regex.match(path)
            if found:
                exists = True
                if route_method == method.upper():
                    return handler, found.groupdict(), True
        return None, {}, exists
