"""Typed, documented settings (the kernel part: types, validation, defaults, docs of
one schema). Where schemas live and how code reads them is the engine's
``integrations.settings_schema``.

A connection's ``settings`` are declared by its connector
(``integrations/connectors/<kind>/settings.py``, exposed as the connector's
``settings_schema``); an integration's are declared by the domain apps, which call
:func:`register_integration_settings` at import time (from ``AppConfig.ready()``).
Everything that writes settings (CLI, admin, services) runs them through
:meth:`Schema.validate`, so stored values are typed JSON; code reads them with
:meth:`Schema.value` (or :func:`connection_setting` / :func:`integration_setting`),
which applies the declared default.

Text is accepted for every type, so ``--setting poll=false`` means ``False`` and
values stored as text by older versions still read correctly.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from integrations.kernel.exceptions import DataError


class SettingsError(DataError):
    """A setting is unknown or its value does not have the declared type."""

    code = "invalid_settings"


TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})
_INTEGER = re.compile(r"[+-]?\d+")


_UNSET = object()


class _Invalid(ValueError):
    """Raised by a coercer: what was expected (and where, inside a list or object)."""

    def __init__(self, expected: str, *, where: str = "", got: Any = _UNSET, text: str = ""):
        super().__init__(text or expected)
        self.expected, self.where, self.got, self.text = expected, where, got, text

    def render(self, value: Any) -> str:
        if self.text:
            return self.text
        got = value if self.got is _UNSET else self.got
        where = f"{self.where}: " if self.where else ""
        return f"{where}expected {self.expected}, got {_shown(got)}"


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _from_json_text(value: Any, opener: str) -> Any:
    if isinstance(value, str) and value.strip().startswith(opener):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise _Invalid(
                "", text=f"invalid JSON ({exc.msg} at character {exc.pos + 1})"
            ) from None
    return value


# --- one coercer per type: value (JSON or text) → typed JSON value ----------------------
def _bool(setting: Setting, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower() if isinstance(value, str | int) else None
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise _Invalid("true or false (also yes/no, 1/0)")


def _integer(value: Any, setting: Setting, wanted: str) -> int:
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        value = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(wanted)
    if not setting.in_range(value):
        raise _Invalid(wanted)
    return value


def _int(setting: Setting, value: Any) -> int:
    return _integer(value, setting, setting.expected)


def _number(setting: Setting, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise _Invalid(setting.expected)
    try:
        number = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise _Invalid(setting.expected) from None
    if not number.is_finite() or not setting.in_range(number):
        raise _Invalid(setting.expected)
    return int(number) if number == number.to_integral_value() else float(number)


def _str(setting: Setting, value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(setting.expected)
    return value


def _url(setting: Setting, value: Any) -> str:
    if isinstance(value, str):
        try:
            URLValidator(schemes=["http", "https"])(value.strip())
            return value.strip()
        except ValidationError:
            pass
    raise _Invalid(setting.expected + " (http:// or https://)")


def _timezone(setting: Setting, value: Any) -> str:
    if isinstance(value, str) and value.strip():
        try:
            ZoneInfo(value.strip())
            return value.strip()
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise _Invalid(setting.expected + " such as Europe/Berlin or America/New_York")


def _choice(setting: Setting, value: Any) -> str:
    if isinstance(value, str) and value.strip() in (setting.choices or ()):
        return value.strip()
    raise _Invalid(setting.expected)


def _list_of(item: Callable[[Setting, Any], Any]) -> Callable[[Setting, Any], list]:
    def coerce(setting: Setting, value: Any) -> list:
        value = _from_json_text(value, "[")
        if isinstance(value, str):  # a comma list
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple):
            raise _Invalid(setting.expected + " (JSON array or comma-separated)")
        result = []
        for position, element in enumerate(value, start=1):
            try:
                result.append(item(setting, element))
            except _Invalid as exc:
                raise _Invalid(exc.expected, where=f"item {position}", got=element) from None
        return result

    return coerce


def _str_item(setting: Setting, value: Any) -> str:
    if setting.choices:
        if isinstance(value, str) and value.strip() in setting.choices:
            return value.strip()
        raise _Invalid(f"one of {', '.join(setting.choices)}")
    if not isinstance(value, str):
        raise _Invalid("text")
    return value


def _int_item(setting: Setting, value: Any) -> int:
    return _integer(value, setting, "integer" + setting.range_text)


def _dict_of(key_type: str) -> Callable[[Setting, Any], dict]:
    def coerce(setting: Setting, value: Any) -> dict:
        value = _from_json_text(value, "{")
        if not isinstance(value, Mapping):
            raise _Invalid(setting.expected + ' (a JSON object, e.g. {"key": "value"})')
        result = {}
        for key, element in value.items():
            text_key = str(key).strip()
            if key_type == "int" and not _INTEGER.fullmatch(text_key):
                raise _Invalid("an integer id", where="key", got=key)
            text_key = str(int(text_key)) if key_type == "int" else text_key
            if isinstance(element, int) and not isinstance(element, bool):
                element = str(element)  # {"sales": 4000} means the account "4000"
            if not isinstance(element, str) or (
                setting.choices and element.strip() not in setting.choices
            ):
                wanted = f"one of {', '.join(setting.choices)}" if setting.choices else "text"
                raise _Invalid(wanted, where=f"value of {_shown(text_key)}", got=element)
            result[text_key] = element.strip() if setting.choices else element
        return result

    return coerce


_COERCERS: dict[str, Callable[[Setting, Any], Any]] = {
    "bool": _bool,
    "int": _int,
    "number": _number,
    "str": _str,
    "url": _url,
    "timezone": _timezone,
    "choice": _choice,
    "list[str]": _list_of(_str_item),
    "list[int]": _list_of(_int_item),
    "dict[str,str]": _dict_of("str"),
    "dict[int,str]": _dict_of("int"),
}
TYPES = tuple(_COERCERS)

_DESCRIPTIONS = {
    "bool": "true/false",
    "int": "integer",
    "number": "number",
    "str": "text",
    "url": "URL",
    "timezone": "IANA time zone",
    "choice": "one of {choices}",
    "list[str]": "list of text",
    "list[int]": "list of integers",
    "dict[str,str]": "JSON object of text",
    "dict[int,str]": "JSON object: integer id → text",
}
_CHOICE_DESCRIPTIONS = {
    "list[str]": "list of {choices}",
    "dict[str,str]": "JSON object of {choices}",
    "dict[int,str]": "JSON object: integer id → one of {choices}",
}


@dataclass(frozen=True)
class Setting:
    """One declared setting.

    ``default`` is the value code gets when the setting is not stored: a plain value,
    or a zero-argument callable evaluated on every read (for defaults that come from
    Django settings); ``None`` means "not set" (the reader decides). ``default_doc``
    describes a computed default in the docs. ``min``/``max`` bound numbers (inclusive).
    ``choices`` restrict a "choice", and the items or values of list/dict types.
    """

    name: str
    type: str
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    min: int | Decimal | None = None
    max: int | Decimal | None = None
    default_doc: str = ""

    def __post_init__(self) -> None:
        if self.type not in _COERCERS:
            raise ValueError(f"setting {self.name}: unknown type {self.type!r}; use one of {TYPES}")
        if self.type == "choice" and not self.choices:
            raise ValueError(f"setting {self.name}: a choice needs choices")
        if self.choices and self.type not in ("choice", *_CHOICE_DESCRIPTIONS):
            raise ValueError(f"setting {self.name}: type {self.type} takes no choices")
        if not self.help.strip():
            raise ValueError(f"setting {self.name}: every setting needs help text")
        if callable(self.default):
            if not self.default_doc:
                raise ValueError(f"setting {self.name}: a computed default needs default_doc")
        elif self.default is not None:
            try:
                coerced = self.coerce(self.default)
            except SettingsError as exc:
                raise ValueError(f"default of {exc.message}") from None
            if coerced != self.default or type(coerced) is not type(self.default):
                raise ValueError(f"setting {self.name}: write the default as {coerced!r}")

    @property
    def expected(self) -> str:
        """What a valid value looks like, for error messages and the docs."""
        template = (_CHOICE_DESCRIPTIONS if self.choices else {}).get(self.type)
        text = (template or _DESCRIPTIONS[self.type]).format(choices=", ".join(self.choices or ()))
        return text + self.range_text

    @property
    def range_text(self) -> str:
        if self.min is not None and self.max is not None:
            return f" from {self.min} to {self.max}"
        if self.min is not None:
            return f" ≥ {self.min}"
        if self.max is not None:
            return f" ≤ {self.max}"
        return ""

    def in_range(self, number: Any) -> bool:
        return (self.min is None or number >= self.min) and (self.max is None or number <= self.max)

    def coerce(self, value: Any) -> Any:
        """Typed JSON value, from a JSON value or text; SettingsError if impossible."""
        try:
            return _COERCERS[self.type](self, value)
        except _Invalid as exc:
            raise SettingsError(f"setting {self.name!r}: {exc.render(value)}") from None

    def default_value(self) -> Any:
        value = self.default() if callable(self.default) else self.default
        return copy.deepcopy(value)  # a caller that mutates it must not change the default

    def documented_default(self) -> str:
        if self.default_doc:
            return self.default_doc
        if self.default is None:
            return "—"
        return f"`{json.dumps(self.default, ensure_ascii=False)}`"


@dataclass(frozen=True)
class Schema:
    """The settings of one connector kind, or of integrations."""

    settings: tuple[Setting, ...] = ()

    def __post_init__(self) -> None:
        names = [s.name for s in self.settings]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"settings declared twice: {', '.join(duplicates)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.settings)

    def _known(self) -> str:
        return ", ".join(sorted(self.names)) or "(none)"

    def get(self, name: str) -> Setting:
        for setting in self.settings:
            if setting.name == name:
                return setting
        raise SettingsError(f"unknown setting {name!r}; known settings: {self._known()}")

    def validate(self, raw: Mapping[str, Any] | None) -> dict[str, Any]:
        """Coerced copy of ``raw``; all problems in one SettingsError. ``null`` values
        are dropped (the default applies)."""
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            raise SettingsError(f"settings must be a JSON object, got {_shown(raw)}")
        unknown = sorted(str(k) for k in raw if k not in self.names)
        if unknown:
            listed = ", ".join(repr(k) for k in unknown)
            raise SettingsError(
                f"unknown setting{'s' if len(unknown) > 1 else ''} {listed}; "
                f"known settings: {self._known()}"
            )
        result, problems = {}, []
        for name, value in raw.items():
            if value is None:
                continue
            try:
                result[name] = self.get(name).coerce(value)
            except SettingsError as exc:
                problems.append(exc.message)
        if problems:
            raise SettingsError("; ".join(problems))
        return result

    def update(
        self,
        stored: Mapping[str, Any] | None,
        changes: Mapping[str, Any] | None = None,
        unset: Iterable[str] = (),
    ) -> dict[str, Any]:
        """``stored`` with ``changes`` applied and ``unset`` removed, validated whole.

        A stored key that is no longer declared can be unset (that is how it is cleaned
        up); unsetting a declared key that is not stored is a no-op."""
        changes, unset = dict(changes or {}), list(unset)
        if both := sorted(set(changes) & set(unset)):
            raise SettingsError(f"setting {both[0]!r} is both set and unset")
        result = dict(stored or {})
        for name in unset:
            if name not in result:
                self.get(name)  # unknown everywhere: say which ones exist
            result.pop(name, None)
        result.update(changes)
        return self.validate(result)

    def parse_cli(self, text: str) -> tuple[str, Any]:
        """``"name=value"`` → ``(name, typed value)``."""
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or not name:
            raise SettingsError(f"expected NAME=VALUE, got {_shown(text)}")
        return name, self.get(name).coerce(value)

    def value(self, settings: Mapping[str, Any] | None, name: str) -> Any:
        """The typed value of ``name`` in stored ``settings``, or its default."""
        setting = self.get(name)
        stored = (settings or {}).get(name)
        if stored is None:
            return setting.default_value()
        return setting.coerce(stored)

    def markdown(self) -> str:
        """The settings as a Markdown table."""
        rows = ["| setting | type | default | meaning |", "|---|---|---|---|"]
        for s in self.settings:
            cells = (f"`{s.name}`", s.expected, s.documented_default(), s.help)
            rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(rows)


EMPTY = Schema()


def validate(schema: Schema, raw: Mapping[str, Any] | None) -> dict[str, Any]:
    return schema.validate(raw)


def parse_cli(schema: Schema, text: str) -> tuple[str, Any]:
    return schema.parse_cli(text)


def parse_cli_all(schema: Schema, items: Iterable[str]) -> dict[str, Any]:
    """Repeated ``--setting NAME=VALUE`` options → typed dict (later ones win)."""
    return dict(schema.parse_cli(item) for item in items)
