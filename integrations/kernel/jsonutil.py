"""JSON with exact decimals: Decimal values are written as JSON numbers with their
exact digits (never through float), for APIs like Znode's that want numbers."""

from __future__ import annotations

import json
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
