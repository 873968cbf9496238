"""JSON for the wire and for the database.

:func:`dumps_exact`: Decimal values are written as JSON numbers with their exact digits
(never through float), for APIs like Znode's that want numbers. :func:`db_json` /
:func:`db_text`: text any database column can store."""

from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal
from typing import Any


def dumps_exact(value: Any) -> str:
    marker = f"__decimal_{uuid.uuid4().hex}__"
    numbers: list[str] = []

    def replace(node: Any) -> Any:
        if isinstance(node, Decimal):
            if not node.is_finite():
                raise ValueError(f"cannot send {node} as a JSON number")
            numbers.append(format(node, "f"))
            return f"{marker}{len(numbers) - 1}"
        if isinstance(node, float):
            raise TypeError("refusing to serialise a float; use Decimal for money")
        if isinstance(node, dict):
            return {k: replace(v) for k, v in node.items()}
        if isinstance(node, list | tuple):
            return [replace(v) for v in node]
        return node

    text = json.dumps(replace(value))
    for index, number in enumerate(numbers):
        text = text.replace(f'"{marker}{index}"', number, 1)
    return text


# PostgreSQL stores neither NUL in text nor ``\u0000`` in jsonb, and no text can hold a
# lone surrogate (they are not characters; UTF-8 cannot encode them). Senders put
# them in customer names and metadata anyway: each becomes U+FFFD, the replacement
# character, before it reaches a column, so one such event cannot stop the inbox. The
# raw body keeps the sender's bytes (as JSON escapes) for the evidence.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def db_text(value: str) -> str:
    """``value`` with NUL and lone surrogates replaced by U+FFFD (same text otherwise)."""
    return _UNSTORABLE.sub(REPLACEMENT, value) if _UNSTORABLE.search(value) else value


def db_json(value: Any) -> Any:
    """A copy of a JSON-able value whose strings (keys and values) are :func:`db_text`:
    what every JSONField write goes through (job contexts, step outputs, headers)."""
    if isinstance(value, str):
        return db_text(value)
    if isinstance(value, dict):
        return {db_text(k) if isinstance(k, str) else k: db_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [db_json(v) for v in value]
    return value
