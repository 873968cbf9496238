"""Reading form parameters the way Stripe does: strings in, typed values out, Stripe's
messages for what is missing, unknown or malformed."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from sandbox.stripe.errors import invalid, missing_param, unknown_param

ADDRESS_FIELDS = ("city", "country", "line1", "line2", "postal_code", "state")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_known(params: dict, allowed: Iterable[str], prefix: str = "") -> None:
    allowed = set(allowed) | ({"expand"} if not prefix else set())
    for key in params:
        if key not in allowed:
            raise unknown_param(f"{prefix}[{key}]" if prefix else key)


def text(
    params: dict,
    name: str,
    *,
    required: bool = False,
    max_length: int | None = None,
    choices: Iterable[str] | None = None,
    param: str | None = None,
) -> str | None:
    """A string; "" means unset (None)."""
    param = param or name
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing_param(param)
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {value!r}", param)
    if max_length is not None and len(value) > max_length:
        raise invalid(
            f"Invalid string: {value[:20]}...; must be at most {max_length} characters", param
        )
    if choices is not None:
        options = list(choices)
        if value not in options:
            listed = (
                ", ".join(options[:-1]) + f", or {options[-1]}" if len(options) > 1 else options[0]
            )
            raise invalid(f"Invalid {param}: must be one of {listed}", param)
    return value


def integer(
    params: dict,
    name: str,
    *,
    required: bool = False,
    minimum: int | None = None,
    param: str | None = None,
) -> int | None:
    param = param or name
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing_param(param)
        return None
    try:
        number = int(str(value))
    except ValueError:
        raise invalid(f"Invalid integer: {value}", param, "parameter_invalid_integer") from None
    if minimum is not None and number < minimum:
        raise invalid(
            f"This value must be greater than or equal to {minimum}.",
            param,
            "parameter_invalid_integer",
        )
    return number


def boolean(params: dict, name: str, default: bool | None = None) -> bool | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise invalid(f"Invalid boolean: {value}", name)


def email(params: dict, name: str) -> str | None:
    value = text(params, name, max_length=512)
    if value is not None and not EMAIL.match(value):
        raise invalid(f"Invalid email address: {value}", name, "email_invalid")
    return value


def dict_param(params: dict, name: str) -> dict | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, list):  # a[0]=x decodes as a list; Stripe keys are strings
        value = {str(i): v for i, v in enumerate(value)}
    if not isinstance(value, dict):
        raise invalid(f"Invalid object: {name} must be a hash", name)
    return value


def string_list(params: dict, name: str) -> list[str] | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, dict):
        value = [value[k] for k in sorted(value, key=lambda k: int(k) if k.isdigit() else 0)]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(f"Invalid array: {name}", name)
    return value


def expand(params: dict) -> list[str]:
    return string_list(params, "expand") or []


def metadata(params: dict, current: dict | None = None) -> dict | None:
    """New metadata after applying ``metadata[...]`` to ``current`` (None if not given).
    ``metadata[k]=""`` removes a key; ``metadata=""`` removes them all."""
    if "metadata" not in params:
        return None
    raw = params["metadata"]
    if raw == "":
        return {}
    values = dict_param(params, "metadata") or {}
    result = dict(current or {})
    for key, value in values.items():
        if not isinstance(value, str):
            raise invalid(f"Invalid metadata: metadata[{key}] must be a string", f"metadata[{key}]")
        if len(key) > 40:
            raise invalid(
                f"Metadata keys can have up to 40 characters; {key!r} has {len(key)}.",
                f"metadata[{key}]",
            )
        if len(value) > 500:
            raise invalid(
                f"Metadata values can have up to 500 characters, but you passed in a value that "
                f"is {len(value)} characters. Invalid value: {value[:20]}...",
                f"metadata[{key}]",
            )
        if value == "":
            result.pop(key, None)
        else:
            result[key] = value
    if len(result) > 50:
        raise invalid("Invalid metadata: metadata can have up to 50 keys.", "metadata")
    return result


def address(value: Any, param: str) -> dict | None:
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        raise invalid(f"Invalid object: {param} must be a hash", param)
    check_known(value, ADDRESS_FIELDS, param)
    result = {}
    for field in ADDRESS_FIELDS:
        result[field] = text(value, field, max_length=5000, param=f"{param}[{field}]")
    if result["country"] is not None and not re.fullmatch(r"[A-Za-z]{2}", result["country"]):
        raise invalid(
            f"Country '{result['country']}' is unknown. Try using a 2-character alphanumeric "
            "country code instead, such as 'US', 'EG', or 'GB'.",
            f"{param}[country]",
        )
    if result["country"]:
        result["country"] = result["country"].upper()
    return result


def shipping(value: Any, param: str = "shipping") -> dict | None:
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        raise invalid(f"Invalid object: {param} must be a hash", param)
    check_known(value, ("address", "name", "phone", "carrier", "tracking_number"), param)
    if not value.get("name"):
        raise missing_param(f"{param}[name]")
    if not value.get("address"):
        raise missing_param(f"{param}[address]")
    result = {
        "address": address(value.get("address"), f"{param}[address]"),
        "name": text(value, "name", max_length=5000, param=f"{param}[name]"),
        "phone": text(value, "phone", max_length=5000, param=f"{param}[phone]"),
    }
    for extra in ("carrier", "tracking_number"):
        if extra in value:
            result[extra] = text(value, extra, param=f"{param}[{extra}]")
    return result


def billing_details(value: Any, param: str = "billing_details") -> dict:
    empty = {
        "address": dict.fromkeys(ADDRESS_FIELDS),
        "email": None,
        "name": None,
        "phone": None,
        "tax_id": None,
    }
    if value is None or value == "":
        return empty
    if not isinstance(value, dict):
        raise invalid(f"Invalid object: {param} must be a hash", param)
    check_known(value, ("address", "email", "name", "phone", "tax_id"), param)
    result = dict(empty)
    if value.get("address"):
        result["address"] = address(value["address"], f"{param}[address]")
    for key in ("name", "phone", "tax_id"):
        result[key] = text(value, key, max_length=5000, param=f"{param}[{key}]")
    result["email"] = email(value, "email") if value.get("email") else None
    return result


def range_filter(params: dict, name: str) -> Callable[[int], bool] | None:
    """``created=123`` or ``created[gte]=..&created[lt]=..`` → a predicate on an int."""
    if name not in params:
        return None
    value = params[name]
    if isinstance(value, str):
        exact = integer(params, name)
        return lambda x: x == exact
    if not isinstance(value, dict):
        raise invalid(f"Invalid {name}", name)
    check_known(value, ("gt", "gte", "lt", "lte"), name)
    bounds = {op: integer(value, op, param=f"{name}[{op}]") for op in value}
    tests = {
        "gt": lambda x, b: x > b,
        "gte": lambda x, b: x >= b,
        "lt": lambda x, b: x < b,
        "lte": lambda x, b: x <= b,
    }
    return lambda x: all(tests[op](x, b) for op, b in bounds.items() if b is not None)
