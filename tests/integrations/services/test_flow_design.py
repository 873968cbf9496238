"""Designing flows (issue 14, Deliver 1-2): an invalid flow says why, where; the
preview evaluates a mapping row by row on a sample, with the exact error of a bad
row, and writes nothing."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from integrations.mapping import Rule
from integrations.models import EnvironmentValue, LookupTable
from integrations.registry import get_action
from integrations.services.flow_design import (
    action_inputs,
    flow_problems,
    mapping_preview,
    trigger_events,
)
from integrations.services.flow_versions import flow_definition
from tests.conftest import make_flow

pytestmark = pytest.mark.django_db


def definition(**changes) -> dict:
    flow = {
        "key": "designed",
        "name": "Designed",
        "description": "",
        "trigger_source": "stripe",
        "trigger_event": "payment_intent.succeeded",
        "condition": "payment.order_number",
        "steps": [
            {
                "name": "fetch",
                "action": "payments.fetch_order",
                "enabled": True,
                "mapping": {
                    "key": "designed.fetch",
                    "fields": [
                        {"target": "order_id", "source": "payment.order_id", "transform": "int"}
                    ],
                },
            },
            {
                "name": "echo",
                "action": "tests.echo",
                "enabled": True,
                "mapping": {
                    "key": "designed.echo",
                    "fields": [{"target": "value", "source": "steps.fetch.order_number"}],
                },
            },
        ],
    }
    flow.update(changes)
    return flow


def test_a_valid_flow_has_no_problem():
    assert flow_problems(definition()) == []


def test_every_shipped_flow_is_valid():
    from django.core.management import call_command

    call_command("install_flows", verbosity=0)
    from integrations.models import Flow

    problems = {f.key: flow_problems(flow_definition(f)) for f in Flow.objects.all()}
    assert {k: v for k, v in problems.items() if v} == {}


def test_each_kind_of_mistake_is_named_where_it_is():
    flow = definition(trigger_event="payment_intent.exploded", condition="payment.[")
    fetch, echo = flow["steps"]
    fetch["mapping"]["fields"] = [
        {"target": "order", "source": "payment.order_id", "transform": "rot13"}
    ]
    echo["action"] = "payments.no_such_action"
    echo["mapping"]["fields"].append({"target": "value", "source": "steps.later.x"})
    flow["steps"].append({"name": "echo", "action": "tests.echo", "mapping": None})

    problems = [str(p) for p in flow_problems(flow)]

    assert problems[0].startswith(
        "trigger: no stripe connector emits an event matching 'payment_intent.exploded'"
    )
    assert problems[1].startswith("condition: invalid expression 'payment.['")
    assert "step fetch · order: no transform is registered under 'rot13'" in problems[2]
    assert problems[3:] == [
        "step fetch · order: action payments.fetch_order takes no input 'order'",
        "step fetch: required input 'order_id' of payments.fetch_order is not mapped",
        "step echo: no action is registered under 'payments.no_such_action'",
        "step echo · value: reads steps.later: no step has that name",
        "step echo: two mapping rows set the same target",
        "step echo: two steps have this name",
    ]


def test_a_pattern_trigger_and_a_lookup_table_are_checked_against_what_exists():
    assert flow_problems(definition(trigger_event="payment_intent.*")) == []
    flow = definition()
    flow["steps"][1]["mapping"]["fields"][0]["transform"] = "lookup:order-states"
    assert [str(p) for p in flow_problems(flow)] == [
        "step echo · value: lookup table 'order-states' does not exist"
    ]
    LookupTable.objects.create(key="order-states", entries={})
    assert flow_problems(flow) == []
    assert "payment_intent.succeeded" in trigger_events("stripe")
    assert trigger_events("erp") == []


def test_an_actions_inputs_show_type_required_default_and_help():
    inputs = {i.name: i for i in action_inputs(get_action("payments.ensure_customer"))}
    assert (inputs["user_id"].type, inputs["user_id"].required) == ("int", True)
    assert (inputs["email"].required, inputs["email"].default) == (False, "")
    assert inputs["address"].type == "dict | None"


SAMPLE = {
    "payment": {"order_number": "ORD-9", "amount": 1999, "country": "us"},
    "steps": {"fetch": {"total": "19.99"}},
}


def test_the_preview_gives_each_rows_value_or_its_exact_error_and_writes_nothing():
    EnvironmentValue.objects.create(name="gl-sales", value="4000")
    rules = [
        Rule("order_number", "payment.order_number"),
        Rule("metadata.country", "payment.country", "upper"),
        Rule("total", "steps.fetch.total", "decimal"),
        Rule("amount", "payment.amount", "lookup:missing-table"),
        Rule("account", default={"$env": "gl-sales"}),
        Rule("note", "payment.note"),
        Rule("reference", "payment.reference", required=True),
    ]

    with CaptureQueriesContext(connection) as queries:
        preview = mapping_preview(rules, SAMPLE)

    assert not any(
        q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) for q in queries
    )
    rows = {row.target: row for row in preview.rows}
    assert rows["order_number"].value == "ORD-9"
    assert rows["metadata.country"].value == "US"
    assert rows["total"].value == "19.99"
    assert rows["amount"].error == "amount: lookup table 'missing-table' does not exist"
    assert (rows["account"].value, rows["account"].used_default) == ("4000", True)
    assert rows["note"].skipped is True
    assert rows["reference"].error == ("reference is required but payment.reference gave no value")
    assert preview.inputs == {
        "order_number": "ORD-9",
        "metadata": {"country": "US"},
        "total": "19.99",
        "account": "4000",
    }
    assert preview.ok is False


def test_an_environment_value_missing_here_is_a_row_error():
    preview = mapping_preview([Rule("account", default={"$env": "gl-fees"})], SAMPLE)
    assert preview.rows[0].error == ("environment value 'gl-fees' is not set in this environment")


def test_a_disabled_step_needs_no_mapping():
    flow = make_flow("half", steps=[("fetch", "payments.fetch_order", {})])
    definition_ = flow_definition(flow)
    assert [str(p) for p in flow_problems(definition_)] == [
        "step fetch: required input 'order_id' of payments.fetch_order is not mapped"
    ]
    definition_["steps"][0]["enabled"] = False
    assert flow_problems(definition_) == []
