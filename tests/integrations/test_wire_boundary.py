"""Domain code reads facts, never wire paths (issue 8): the keys a connector's
``mapping.py`` reads out of its system's payloads appear in no domain module, and the
shipped flows' mappings read the events' facts, not their raw payloads."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONNECTORS = ROOT / "integrations" / "connectors"
DOMAIN_APPS = ("payments", "customers", "reconciliation")


def _keys_read(tree: ast.AST) -> set[str]:
    """String keys read as ``x.get("Key")`` or ``x["Key"]``."""
    keys: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            keys.add(node.args[0].value)
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            keys.add(node.slice.value)
    return keys


def _domain_modules() -> list[Path]:
    modules = []
    for app in DOMAIN_APPS:
        for path in (ROOT / app).rglob("*.py"):
            parts = path.relative_to(ROOT).parts
            # Migrations are schema; the demo command checks the sandbox from outside,
            # as a customer would, so it reads the systems' own formats on purpose.
            if "migrations" in parts or "management" in parts:
                continue
            modules.append(path)
    return modules


def wire_vocabulary() -> set[str]:
    vocabulary: set[str] = set()
    for mapping in CONNECTORS.glob("*/mapping.py"):
        vocabulary |= _keys_read(ast.parse(mapping.read_text()))
    return vocabulary


def test_the_connectors_read_a_wire_vocabulary():
    vocabulary = wire_vocabulary()
    assert {"OmsOrderId", "TransactionId", "latest_charge", "amount_received"} <= vocabulary


@pytest.mark.parametrize("path", _domain_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_code_reads_no_wire_key(path):
    used = _keys_read(ast.parse(path.read_text())) & wire_vocabulary()
    assert not used, f"{path.relative_to(ROOT)} reads wire keys {sorted(used)}: read a fact"


@pytest.mark.django_db
def test_shipped_flows_read_facts_not_raw_payloads():
    from integrations.services.flows import default_flows

    raw = []
    for spec in default_flows().values():
        sources = [spec.condition] + [rule.source for step in spec.steps for rule in step.fields]
        raw += [(spec.key, s) for s in sources if s.startswith("event.data")]
    assert raw == []
