"""Evaluate mapping rows against a context document. Pure: no writes, no calls out.

Each row: target ← JMESPath source → transform[:arg], default, required.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

from integrations.kernel.exceptions import MappingError
from integrations.registry import get_transform, transform


@dataclass(frozen=True)
class Rule:
    target: str
    source: str = ""
    transform: str = ""
    default: Any = None
    required: bool = False


@lru_cache(maxsize=1024)
def compile_expression(expression: str):
    try:
        return jmespath.compile(expression)
    except JMESPathError as exc:
        raise MappingError(f"invalid expression {expression!r}: {exc}") from exc


def search(expression: str, document: dict[str, Any]) -> Any:
    try:
        return compile_expression(expression).search(document)
    except MappingError:
        raise
    except JMESPathError as exc:
        raise MappingError(f"expression {expression!r} failed: {exc}") from exc


def set_path(target: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = target
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise MappingError(f"target {path!r} collides with a value at {part!r}")
    node[parts[-1]] = value


def apply_transform(spec: str, value: Any, document: dict[str, Any]) -> Any:
    name, _, arg = spec.partition(":")
    return get_transform(name.strip())(value, arg=arg.strip() or None, document=document)


def environment_value(name: str) -> Any:
    """The value this environment gives ``name`` (*Environment values*)."""
    from integrations.models import EnvironmentValue

    row = EnvironmentValue.objects.filter(name=name).values_list("value", flat=True)
    found = list(row[:1])
    if not found:
        raise MappingError(f"environment value {name!r} is not set in this environment")
    return found[0]


def default_value(default: Any) -> Any:
    """A row's default: as written, or, written ``{"$env": "NAME"}``, this
    environment's value of NAME."""
    if isinstance(default, dict) and len(default) == 1 and "$env" in default:
        return environment_value(str(default["$env"]))
    return default


def evaluate(rules: Iterable[Rule], document: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for rule in rules:
        value = search(rule.source, document) if rule.source else None
        if value is None:
            value = default_value(rule.default)
        if value is not None and rule.transform:
            try:
                value = apply_transform(rule.transform, value, document)
            except MappingError as exc:
                raise MappingError(f"{rule.target}: {exc.message}") from exc
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise MappingError(
                    f"{rule.target}: transform {rule.transform} failed on {value!r}: {exc}"
                ) from exc
        if value is None:
            if rule.required:
                raise MappingError(
                    f"{rule.target} is required but {rule.source or 'its default'} gave no value"
                )
            continue
        set_path(result, rule.target, value)
    return result


# --- built-in transforms (Decimal-safe; see registry.transform) ---------------------
@transform("str")
def _to_str(value: Any, *, arg: str | None, document: dict) -> str:
    return str(value)


@transform("int")
def _to_int(value: Any, *, arg: str | None, document: dict) -> int:
    if isinstance(value, float):
        raise MappingError("refusing to convert a float to int (use decimal)")
    return int(Decimal(str(value))) if not isinstance(value, int) else value


@transform("decimal")
def _to_decimal(value: Any, *, arg: str | None, document: dict) -> str:
    try:
        # str() first: a JSON number parsed as float must not leak binary noise.
        return str(Decimal(str(value)))
    except InvalidOperation as exc:
        raise MappingError(f"{value!r} is not a decimal number") from exc


@transform("lower")
def _lower(value: Any, *, arg: str | None, document: dict) -> str:
    return str(value).lower()


@transform("upper")
def _upper(value: Any, *, arg: str | None, document: dict) -> str:
    return str(value).upper()


@transform("strip")
def _strip(value: Any, *, arg: str | None, document: dict) -> str:
    return str(value).strip()


@transform("truncate")
def _truncate(value: Any, *, arg: str | None, document: dict) -> str:
    return str(value)[: int(arg or 500)]


@transform("bool")
def _to_bool(value: Any, *, arg: str | None, document: dict) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "y", "on"}
    return bool(value)


@transform("lookup")
def _lookup(value: Any, *, arg: str | None, document: dict) -> Any:
    """Translate through an operator-editable LookupTable (``lookup:<table key>``)."""
    from integrations.models import LookupTable

    if not arg:
        raise MappingError("lookup needs a table key: lookup:<table>")
    table = LookupTable.objects.filter(key=arg).values_list("entries", flat=True).first()
    if table is None:
        raise MappingError(f"lookup table {arg!r} does not exist")
    key = str(value)
    if key in table:
        return table[key]
    if "*" in table:
        return table["*"]
    raise MappingError(f"lookup table {arg!r} has no entry for {key!r}")
