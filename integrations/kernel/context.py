"""Which job and attempt the current code runs for, so API calls link to them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class RunContext:
    job_id: int | None = None
    attempt_id: int | None = None
    reference: str = ""


# RunContext is frozen, so sharing one default instance is safe.
current_run: ContextVar[RunContext] = ContextVar("current_run", default=RunContext())  # noqa: B039


@contextmanager
def correlated(reference: str) -> Iterator[None]:
    """The work in this block is for ``reference`` (an order number): the logs' correlation
    id, from the webhook that brings an event to the jobs it makes and their calls."""
    token = current_run.set(replace(current_run.get(), reference=reference or ""))
    try:
        yield
    finally:
        current_run.reset(token)
