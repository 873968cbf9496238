"""Which job and attempt the current code runs for, so API calls link to them."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class RunContext:
    job_id: int | None = None
    attempt_id: int | None = None
    reference: str = ""


# RunContext is frozen, so sharing one default instance is safe.
current_run: ContextVar[RunContext] = ContextVar("current_run", default=RunContext())  # noqa: B039
