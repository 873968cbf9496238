"""Znode 9.x query string: ``expand``, ``filter``, ``sort``, ``page``, ``cache``.

Like ``QueryStringParser`` the whole query string is lower-cased before it is split,
so string comparisons are case-insensitive (SQL Server's default collation) and
values come back to the handlers in lower case.

    filter=key~op~value,key2~op2~value2     ops: eq ne cn ncn sw ew gt ge lt le lk is in
                                                  "not in" bw   (in: values split by ^,
                                                  elsewhere ^ stands for a literal comma)
    DateTimeRange~bw~'<from>' AND '<to>'     on order lists: OrderDate between, inclusive
    sort=key~asc,key2~desc
    page=index~N,size~M                      1-based; index 0 or past the end -> 204
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from sandbox.http import Request
from sandbox.znode.wire import INT_MAX, ZnodeError, parse_date

OPERATORS = {"eq", "ne", "cn", "ncn", "sw", "ew", "gt", "ge", "lt", "le", "lk", "is", "in"}
OPERATORS |= {"not in", "bw"}
_BETWEEN = re.compile(r"^'?(.*?)'?\s+and\s+'?(.*?)'?$")


@dataclass
class Query:
    expand: set[str] = field(default_factory=set)
    filters: list[tuple[str, str, str]] = field(default_factory=list)
    sorts: list[tuple[str, bool]] = field(default_factory=list)  # (key, descending)
    page: tuple[int, int] | None = None
    refresh: bool = False
    params: dict[str, str] = field(default_factory=dict)


def parse_query(request: Request) -> Query:
    params = dict(parse_qsl(request.query_string.lower(), keep_blank_values=True))
    query = Query(params=params, refresh=params.get("cache") == "refresh")
    query.expand = {e.strip() for e in params.get("expand", "").split(",") if e.strip()}
    for item in _items(params.get("filter", "")):
        parts = item.split("~", 2)
        if len(parts) != 3 or not parts[0].strip():
            raise ZnodeError(f"Invalid filter '{item}'.")
        key, op, value = parts[0].strip(), parts[1].strip(), parts[2].strip()
        if op not in OPERATORS:
            raise ZnodeError(f"Invalid filter operator '{op}'.")
        query.filters.append((key, op, value))
    for item in _items(params.get("sort", "")):
        key, _, direction = item.partition("~")
        query.sorts.append((key.strip(), direction.strip() == "desc"))
    page = dict(
        (k.strip(), v.strip())
        for k, _, v in (p.partition("~") for p in _items(params.get("page", "")))
    )
    if "index" in page and "size" in page:
        try:
            query.page = (int(page["index"]), int(page["size"]))
        except ValueError:
            raise ZnodeError("Input string was not in a correct format.") from None
    return query


def _items(text: str) -> list[str]:
    return [item for item in text.split(",") if item.strip()]


# --- evaluation ------------------------------------------------------------------------
def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    return value


def _as_number(text: str, column: str) -> Decimal:
    try:
        return Decimal(_unquote(text))
    except (InvalidOperation, ValueError):
        raise ZnodeError(
            f"Conversion failed when converting the nvarchar value '{text}' to data type "
            f"numeric (column {column})."
        ) from None


def _as_date(text: str, minute: bool) -> datetime:
    parsed = parse_date(_unquote(text))
    if parsed is None:
        raise ZnodeError(
            "Conversion failed when converting date and/or time from character string."
        )
    return parsed.replace(second=0, microsecond=0) if minute else parsed


def _typed(value: Any, column: str, dates: set[str], minute: set[str]):
    """(kind, comparable value, converter for filter text)."""
    if column in dates:
        parsed = parse_date(value) if value is not None else None
        is_minute = column in minute
        if parsed is not None and is_minute:
            parsed = parsed.replace(second=0, microsecond=0)
        return parsed, lambda text: _as_date(text, is_minute)
    if isinstance(value, bool):
        return value, lambda text: _unquote(text) in ("true", "1")
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value)), lambda text: _as_number(text, column)
    if value is None:
        return None, lambda text: _unquote(text)
    return str(value).lower(), lambda text: _unquote(text).lower()


def _matches(value: Any, op: str, text: str, convert: Callable[[str], Any]) -> bool:
    if _unquote(text) == "null" and op in ("eq", "ne", "is"):
        return (value is None) == (op in ("eq", "is"))
    if op in ("in", "not in"):
        options = [convert(v) for v in text.split("^") if v.strip()]
        found = value is not None and value in options
        return found if op == "in" else not found
    if op == "bw":
        match = _BETWEEN.match(text.replace("^", ","))
        if not match:
            raise ZnodeError(f"Invalid between value '{text}'.")
        low, high = convert(match.group(1)), convert(match.group(2))
        return value is not None and low <= value <= high
    target = convert(text.replace("^", ","))
    if value is None:
        return op in ("ne", "ncn")
    if op in ("cn", "ncn", "sw", "ew", "lk"):
        haystack, needle = str(value).lower(), str(target).lower()
        if op == "lk":
            pattern = "^" + re.escape(needle).replace("%", ".*").replace("_", ".") + "$"
            return re.match(pattern, haystack) is not None
        found = {
            "cn": needle in haystack,
            "ncn": needle not in haystack,
            "sw": haystack.startswith(needle),
            "ew": haystack.endswith(needle),
        }[op]
        return found
    try:
        return {
            "eq": value == target,
            "is": value == target,
            "ne": value != target,
            "gt": value > target,
            "ge": value >= target,
            "lt": value < target,
            "le": value <= target,
        }[op]
    except TypeError:
        return False


Special = Callable[[list[dict], str, str], list[dict]]


@dataclass
class Table:
    """How a resource's list rows can be filtered and sorted."""

    columns: Iterable[str]
    dates: Iterable[str] = ()
    minute: Iterable[str] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    special: dict[str, Special] = field(default_factory=dict)
    default_sort: list[tuple[str, bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.by_lower = {c.lower(): c for c in self.columns}
        self.date_set = {c.lower() for c in self.dates}
        self.minute_set = {c.lower() for c in self.minute}

    def column(self, key: str) -> str:
        key = self.aliases.get(key, key)
        if key not in self.by_lower:
            raise ZnodeError(f"Invalid column name '{key}'.")
        return key

    def filter(self, rows: list[dict], filters: list[tuple[str, str, str]]) -> list[dict]:
        for key, op, text in filters:
            if key in self.special:
                rows = self.special[key](rows, op, text)
                continue
            lower = self.column(key)
            name = self.by_lower[lower]
            kept = []
            for row in rows:
                value, convert = _typed(row.get(name), lower, self.date_set, self.minute_set)
                if _matches(value, op, text, convert):
                    kept.append(row)
            rows = kept
        return rows

    def sort(self, rows: list[dict], sorts: list[tuple[str, bool]]) -> list[dict]:
        order = sorts or self.default_sort
        for key, descending in reversed(order):
            lower = self.column(key)
            name = self.by_lower[lower]

            def sort_key(row, name=name, lower=lower):
                value, _ = _typed(row.get(name), lower, self.date_set, set())
                return (value is not None, value if value is not None else 0)

            rows = sorted(rows, key=sort_key, reverse=descending)
        return rows


@dataclass
class Page:
    rows: list[dict]
    index: int
    size: int
    total: int

    @property
    def empty(self) -> bool:
        return not self.rows

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.size) if self.size else 0


def select(rows: list[dict], query: Query, table: Table) -> Page:
    """Filter, sort and page rows as a Znode list endpoint does."""
    rows = table.sort(table.filter(list(rows), query.filters), query.sorts)
    total = len(rows)
    if query.page is None:
        return Page(rows, 1, INT_MAX, total)
    index, size = query.page
    if index < 1 or size < 1:
        return Page([], index, size, total)
    start = (index - 1) * size
    return Page(rows[start : start + size], index, size, total)
