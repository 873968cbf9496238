"""Helpers shared by the Znode resource modules: request bodies bound like ASP.NET
Web API binds them (case-insensitive property names, lenient number conversion),
path parameters, the acting user, id counters and route registration."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from sandbox.http import Request, Response
from sandbox.znode.wire import (
    ModelStateError,
    ZnodeError,
    error,
    model_state_error,
)


class Body(dict):
    """A posted model: property names match case-insensitively, as in .NET binding."""

    def __init__(self, data: dict | None = None) -> None:
        super().__init__()
        self.original: dict[str, Any] = dict(data or {})
        for key, value in self.original.items():
            super().__setitem__(str(key).lower(), value)

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def has(self, key: str) -> bool:
        return super().__contains__(key.lower())

    def int(self, key: str, default: int | None = None) -> int | None:
        return as_int(self.get(key), key, default)

    def text(self, key: str) -> str | None:
        value = self.get(key)
        if value is None:
            return None
        return value if isinstance(value, str) else str(value)

    def bool(self, key: str, default: bool = False) -> bool:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1")
        return bool(value)


def jsonable(value: Any) -> Any:
    """A posted value as it may be kept in the JSON state (decimals become numbers)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def as_int(value: Any, field: str = "value", default: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal) and int(value) == value:
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        raise ModelStateError(
            {f"model.{field}": f"Could not convert string to integer: {value}. Path '{field}'."}
        ) from None


def read_body(request: Request) -> Body | None:
    """None when the body is missing or not a JSON object (the model binds to null)."""
    if not request.body:
        return None
    try:
        data = json.loads(request.body, parse_float=Decimal)
    except ValueError:
        return None
    return Body(data) if isinstance(data, dict) else None


def read_list(request: Request) -> list[Body] | None:
    if not request.body:
        return None
    try:
        data = json.loads(request.body, parse_float=Decimal)
    except ValueError:
        return None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        return None
    return [Body(item) for item in data if isinstance(item, dict)]


def path_param(request: Request, name: str) -> str:
    return unquote(request.params.get(name, ""))


def path_int(request: Request, name: str) -> int | None:
    try:
        return int(path_param(request, name))
    except ValueError:
        return None


def acting_user(request: Request) -> int:
    try:
        return int(request.headers.get("Znode-UserId") or 0)
    except ValueError:
        return 0


def guarded(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
    """Turn raised Znode errors into the shapes the controllers answer with."""

    def run(request: Request) -> Response:
        try:
            return handler(request)
        except ModelStateError as exc:
            return model_state_error(exc.errors)
        except ZnodeError as exc:
            if exc.status == 500 and exc.message is None:
                return Response(500, None, {})
            return error(exc.message, exc.code, exc.status, **exc.payload)

    run.__name__ = getattr(handler, "__name__", "handler")
    return run


def fk_error(table: str, column: str) -> ZnodeError:
    return ZnodeError(
        "An error occurred while updating the entries. See the inner exception for details. "
        f'The INSERT statement conflicted with the FOREIGN KEY constraint "FK_{table}_{column}".'
    )


def check_length(errors: dict[str, str], body: Body, field: str, limit: int) -> None:
    value = body.get(field)
    if isinstance(value, str) and len(value) > limit:
        errors[f"model.{field}"] = f"Maximum {limit} characters are allowed."
