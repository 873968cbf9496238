"""Registries of actions and transforms that domain apps fill in at import time.

An action is a plain function with keyword-only, typed parameters, one of which is
``ctx`` (an :class:`~integrations.runtime.ActionContext`). It returns a JSON-able
dict that later steps read as ``steps.<step name>``. Every external write it makes
must carry a deterministic idempotency key (``ctx.idempotency_key(...)``).

    @action("payments.create_payment_intent", description="...")
    def create_payment_intent(*, ctx: ActionContext, order_number: str, amount: str) -> dict:
        ...

A transform turns one mapped value into another. It receives the value, the
argument written after ``:`` in the mapping row, and the whole context document.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from integrations.kernel.exceptions import ActionNotRegistered, MappingError


@dataclass(frozen=True)
class ActionSpec:
    key: str
    func: Callable[..., dict[str, Any] | None]
    description: str
    params: tuple[str, ...]
    required: tuple[str, ...]
    inputs_help: dict[str, str] = field(default_factory=dict)
    """A line of help per input, shown by the flow designer."""

    def call(self, ctx: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(inputs) - set(self.params))
        if unknown:
            raise MappingError(f"action {self.key} has no input(s) {', '.join(unknown)}")
        missing = sorted(set(self.required) - set(inputs))
        if missing:
            raise MappingError(f"action {self.key} needs input(s) {', '.join(missing)}")
        result = self.func(ctx=ctx, **inputs)
        return result if result is not None else {}


_actions: dict[str, ActionSpec] = {}
_transforms: dict[str, Callable[..., Any]] = {}


def action(
    key: str, *, description: str = "", inputs_help: dict[str, str] | None = None
) -> Callable:
    def register(func: Callable) -> Callable:
        signature = inspect.signature(func)
        params, required = [], []
        for name, param in signature.parameters.items():
            if param.kind is not inspect.Parameter.KEYWORD_ONLY:
                raise TypeError(f"action {key}: parameter {name} must be keyword-only")
            if name == "ctx":
                continue
            params.append(name)
            if param.default is inspect.Parameter.empty:
                required.append(name)
        if "ctx" not in signature.parameters:
            raise TypeError(f"action {key} must accept the keyword-only parameter 'ctx'")
        if key in _actions and _actions[key].func is not func:
            raise ValueError(f"action {key} is registered twice")
        _actions[key] = ActionSpec(
            key=key,
            func=func,
            description=description or (inspect.getdoc(func) or "").split("\n")[0],
            params=tuple(params),
            required=tuple(required),
            inputs_help=dict(inputs_help or {}),
        )
        return func

    return register


def get_action(key: str) -> ActionSpec:
    try:
        return _actions[key]
    except KeyError:
        raise ActionNotRegistered(f"no action is registered under {key!r}") from None


def all_actions() -> dict[str, ActionSpec]:
    return dict(_actions)


def transform(name: str) -> Callable:
    def register(func: Callable) -> Callable:
        if name in _transforms and _transforms[name] is not func:
            raise ValueError(f"transform {name} is registered twice")
        _transforms[name] = func
        return func

    return register


def get_transform(name: str) -> Callable[..., Any]:
    try:
        return _transforms[name]
    except KeyError:
        raise MappingError(f"no transform is registered under {name!r}") from None


def all_transforms() -> dict[str, Callable[..., Any]]:
    return dict(_transforms)


# --- setup checks ---------------------------------------------------------------------
_setup_checks: list[Callable[..., list[str]]] = []


def setup_check(func: Callable[..., list[str]]) -> Callable[..., list[str]]:
    """Register ``func(*, integration) -> list[str]``: what is wrong with how a domain
    app's configuration meets the connected systems (e.g. a mapped Znode state the
    store does not have). Run by ``install_flows`` and ``connection test``."""
    _setup_checks.append(func)
    return func


def setup_problems(*, integration: Any) -> list[str]:
    problems: list[str] = []
    for check in _setup_checks:
        problems.extend(check(integration=integration))
    return problems


# --- alerts -----------------------------------------------------------------------------
@dataclass(frozen=True)
class AlertSignal:
    """Something a domain app wants an operator told about (an alert source's answer).

    ``key`` names what it is about; one key is alerted once (``once``) or at most once
    per its rule's repeat window."""

    kind: str
    key: str
    subject: str
    text: str
    once: bool = True


_alert_sources: list[Callable[..., list[AlertSignal]]] = []
_flow_alert_kinds: dict[str, str] = {}


def alert_source(func: Callable[..., list[AlertSignal]]) -> Callable[..., list[AlertSignal]]:
    """Register ``func(*, now) -> list[AlertSignal]``, asked at every alert check
    (e.g. payouts that do not tie out). It must read a bounded, indexed set of rows."""
    _alert_sources.append(func)
    return func


def alert_signals(
    *, now: Any, failed: Callable[[Any, Exception], Any] = lambda source, error: None
) -> list[AlertSignal]:
    """Every source's signals; a source that raises is reported to ``failed`` and the
    others still count."""
    signals: list[AlertSignal] = []
    from django.db import transaction

    for source in _alert_sources:
        try:
            with transaction.atomic():  # a database error is the source's alone
                signals.extend(source(now=now))
        except Exception as error:
            failed(source, error)
    return signals


def flow_alert_kind(flow_key: str, kind: str) -> None:
    """The error groups of flow ``flow_key`` are alerted as ``kind`` (and by that
    kind's rule) instead of as an error group: the drift check's mismatches are
    reconciliation discrepancies."""
    _flow_alert_kinds[flow_key] = kind


def alert_kind_of_flow(flow_key: str, default: str) -> str:
    return _flow_alert_kinds.get(flow_key, default)


# --- dashboard figures ------------------------------------------------------------------------
@dataclass(frozen=True)
class Figure:
    """One figure of the dashboard's money view, as a domain app computes it."""

    title: str
    value: str
    note: str = ""


_figures: list[Callable[..., list[Figure]]] = []


def dashboard_figures(func: Callable[..., list[Figure]]) -> Callable[..., list[Figure]]:
    """Register ``func(*, since) -> list[Figure]``: money figures since a moment (today's
    start), read with bounded, indexed queries (the dashboard refreshes every few
    seconds)."""
    _figures.append(func)
    return func


def figures(*, since: Any) -> list[Figure]:
    import logging

    out: list[Figure] = []
    for func in _figures:
        try:
            out.extend(func(since=since))
        except Exception:  # one figure that cannot be read shows as such, not a 500
            logging.getLogger("integrations.dashboard").exception("figure %s failed", func)
            out.append(Figure(getattr(func, "__name__", "figure"), "unavailable"))
    return out
