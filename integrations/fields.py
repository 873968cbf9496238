"""Model fields that keep secrets encrypted in the database and masked in memory."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from django.db import models

from integrations import crypto


class Sealed:
    """A decrypted secret value that refuses to show itself.

    ``str()``/``repr()`` (and so admin pages, history diffs, logs and tracebacks)
    show only a mask; code that needs the value calls :meth:`reveal`.
    """

    __slots__ = ("_value",)

    def __init__(self, value: Any):
        self._value = value

    def reveal(self) -> Any:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value) if self._value is not None else 0

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sealed):
            return self._value == other._value
        return self._value == other

    def __hash__(self) -> int:
        return hash(json.dumps(self._value, sort_keys=True))

    def describe(self) -> str:
        value = self._value
        if isinstance(value, Mapping):
            return ", ".join(f"{k}=•••" for k in sorted(value)) or "(none)"
        if isinstance(value, list | tuple):
            return ", ".join(f"•••{crypto.fingerprint(str(v))}" for v in value) or "(none)"
        return "•••" if value else "(none)"

    def __str__(self) -> str:
        return f"<sealed {self.describe()}>"

    __repr__ = __str__

    # Mapping-style read access for credential dictionaries.
    def get(self, key: str, default: Any = None) -> Any:
        return self._value.get(key, default) if isinstance(self._value, Mapping) else default

    def keys(self) -> Iterator[str]:
        return iter(self._value.keys()) if isinstance(self._value, Mapping) else iter(())


def reveal(value: Any) -> Any:
    """The clear value of a field that may hold a Sealed (loaded) or a plain (assigned) value."""
    return value.reveal() if isinstance(value, Sealed) else value


class EncryptedJSONField(models.TextField):
    """JSON value encrypted with the configured Fernet keys.

    The column holds only ciphertext, so a database dump shows no secret. In Python
    the value is a :class:`Sealed` wrapper.
    """

    description = "Encrypted JSON"

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return Sealed(self.get_default())
        return Sealed(json.loads(crypto.decrypt(value)))

    def to_python(self, value):
        if isinstance(value, Sealed) or value is None:
            return value
        if isinstance(value, str):
            try:
                return Sealed(json.loads(crypto.decrypt(value)))
            except Exception:
                return Sealed(json.loads(value))
        return Sealed(value)

    def get_prep_value(self, value):
        if value is None:
            return None
        if isinstance(value, Sealed):
            value = value.reveal()
        return crypto.encrypt(json.dumps(value, sort_keys=True))

    def value_to_string(self, obj):
        # Serialisation (dumpdata, history diffs) never shows the clear value.
        return str(self.value_from_object(obj))
