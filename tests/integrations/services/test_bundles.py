"""Flow bundles (issue 14, Deliver 6): export → dry run → import, all or nothing, with
an audit naming the bundle and its hash; never a connection or a secret; exporting
again after an import gives the same bundle. The round trip between two databases
runs ``manage.py`` against a second, freshly migrated SQLite database."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from integrations.kernel.exceptions import DataError
from integrations.models import (
    BundleImport,
    EnvironmentValue,
    Flow,
    FlowStep,
    FlowVersion,
    LookupTable,
    MappingField,
)
from integrations.services.bundles import bundle_apply, bundle_export, bundle_plan

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def shipped():
    call_command("install_flows", stdout=io.StringIO())


def edit_order_to_cash():
    """What a developer does in Dev: the order's number also in the PaymentIntent's
    metadata... here, a changed row and a lookup entry."""
    row = MappingField.objects.filter(
        mapping__flowstep__flow__key="order-created-collect-payment"
    ).first()
    row.source = f"{row.source} || event.id" if row.source else "event.id"
    row.save()
    table = LookupTable.objects.first()
    table.entries = {**table.entries, "SANDBOX": "value"}
    table.save()
    return row


def test_a_bundle_holds_flows_and_tables_and_never_a_connection_or_secret(shipped, integration):
    bundle = bundle_export()
    text = json.dumps(bundle)
    assert {f["key"] for f in bundle["flows"]} == set(Flow.objects.values_list("key", flat=True))
    assert len(bundle["lookups"]) == LookupTable.objects.count()
    for secret_like in (
        "sk_test",
        "secret",
        "password",
        integration.stripe.name,
        integration.znode.base_url,
    ):
        assert secret_like not in text
    assert '"id"' not in text and "pk" not in bundle["flows"][0]


def test_one_flows_bundle_takes_only_the_tables_it_uses(shipped):
    LookupTable.objects.create(key="order-labels", entries={"*": "web"})
    row = MappingField.objects.filter(
        mapping__flowstep__flow__key="order-created-collect-payment"
    ).first()
    row.transform = "lookup:order-labels"
    row.save()

    bundle = bundle_export(["order-created-collect-payment"])

    assert [f["key"] for f in bundle["flows"]] == ["order-created-collect-payment"]
    assert [t["key"] for t in bundle["lookups"]] == ["order-labels"]
    with pytest.raises(DataError, match="no flow has the key"):
        bundle_export(["no-such-flow"])


def test_the_dry_run_shows_the_diff_and_the_import_applies_it_with_an_audit(shipped):
    before = bundle_export()
    row = edit_order_to_cash()
    bundle = bundle_export()
    # Back to where the target environment stands.
    bundle_apply(before, name="before.json", user="setup")
    BundleImport.objects.all().delete()

    plan = bundle_plan(bundle)

    changed = {(i.kind, i.key): i.changes for i in plan.changed}
    assert set(changed) == {
        ("flow", "order-created-collect-payment"),
        ("lookup", LookupTable.objects.first().key),
    }
    assert any(
        row.target in line and "event.id" in line
        for line in changed[("flow", "order-created-collect-payment")]
    )
    assert changed[("lookup", LookupTable.objects.first().key)] == ['SANDBOX → "value": added']
    assert plan.problems == [] and not BundleImport.objects.exists()

    bundle_apply(bundle, name="dev-2026-12-03.json", user="ana")

    audit = BundleImport.objects.get()
    assert (audit.name, audit.digest, audit.imported_by) == (
        "dev-2026-12-03.json",
        bundle["hash"],
        "ana",
    )
    assert any("order-created-collect-payment" in line for line in audit.summary)
    version = (
        FlowVersion.objects.filter(flow__key="order-created-collect-payment")
        .order_by("-number")
        .first()
    )
    assert version.created_by == "ana" and bundle["hash"][:12] in version.reason
    again = bundle_export()
    assert again["hash"] == bundle["hash"]
    assert {k: v for k, v in again.items() if k != "exported_at"} == {
        k: v for k, v in bundle.items() if k != "exported_at"
    }
    assert bundle_plan(bundle).changed == []


def test_a_bundle_altered_or_invalid_is_refused_and_nothing_is_written(shipped):
    bundle = bundle_export()
    steps_before = list(FlowStep.objects.values_list("flow__key", "name", "action"))

    tampered = json.loads(json.dumps(bundle))
    tampered["flows"][0]["trigger_event"] = "payment_intent.canceled"
    with pytest.raises(DataError, match="hash does not match"):
        bundle_plan(tampered)

    broken = json.loads(json.dumps(bundle))
    broken["flows"][0]["steps"][0]["action"] = "payments.no_such_action"
    broken["flows"][-1]["steps"][0]["mapping"] = {
        "key": "needs-env",
        "fields": [{"target": "value", "default": {"$env": "gl-sales"}}],
    }
    content = {"flows": broken["flows"], "lookups": broken["lookups"]}
    from integrations.services.bundles import content_hash

    broken["hash"] = content_hash(content)
    plan = bundle_plan(broken)
    assert any(
        "no action is registered under 'payments.no_such_action'" in p for p in plan.problems
    )
    assert "environment value 'gl-sales' is not set here (Environment values)" in plan.problems
    with pytest.raises(DataError, match="cannot be imported"):
        bundle_apply(broken, name="broken.json", user="ana")
    assert list(FlowStep.objects.values_list("flow__key", "name", "action")) == steps_before
    assert not BundleImport.objects.exists()

    EnvironmentValue.objects.create(name="gl-sales", value="4000")
    assert not any("gl-sales" in p for p in bundle_plan(broken).problems)


def test_the_command_exports_and_imports_between_two_databases(shipped, tmp_path):
    """Dev's database exports; a second database (migrated fresh, flows installed)
    shows the diff, imports it, and exports the same bundle back."""
    edit_order_to_cash()
    exported = tmp_path / "dev.json"
    call_command("flows", "export", "--output", str(exported))
    bundle = json.loads(exported.read_text())

    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'qa.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "true",
        "VAR_DIR": str(tmp_path),
        "ENVIRONMENT_NAME": "qa",
    }

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    for setup in (("migrate", "--no-input", "-v", "0"), ("install_flows",)):
        done = manage(*setup)
        assert done.returncode == 0, done.stderr
    dry = manage("flows", "import", str(exported), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert (
        "dry run, nothing written" in dry.stdout
        and "change    flow order-created-collect-payment" in dry.stdout
    )
    applied = manage("flows", "import", str(exported), "--user", "release-bot")
    assert applied.returncode == 0, applied.stderr
    back = tmp_path / "qa.json"
    assert manage("flows", "export", "--output", str(back)).returncode == 0
    returned = json.loads(back.read_text())
    assert returned["hash"] == bundle["hash"] and returned["source"] == "qa"
    assert returned["flows"] == bundle["flows"] and returned["lookups"] == bundle["lookups"]


def test_the_command_says_what_is_wrong_with_a_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CommandError, match="cannot read the bundle"):
        call_command("flows", "import", str(bad), "--dry-run")
    bad.write_text(json.dumps({"format": 99}))
    with pytest.raises(CommandError, match="not a flow bundle of format 1"):
        call_command("flows", "import", str(bad))


def test_the_same_export_and_import_in_the_admin(shipped, client, django_user_model):
    from django.contrib.auth.models import Permission
    from django.core.files.uploadedfile import SimpleUploadedFile

    user = django_user_model.objects.create_user("dev", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_flow"))
    client.force_login(user)
    flow = Flow.objects.get(key="order-created-collect-payment")
    refused = client.post(
        "/admin/integrations/flow/", {"action": "export_bundle", "_selected_action": [flow.pk]}
    )
    assert "Content-Disposition" not in refused  # a viewer may not export
    user.user_permissions.add(Permission.objects.get(codename="change_flow"))
    exported = client.post(
        "/admin/integrations/flow/",
        {"action": "export_bundle", "_selected_action": [flow.pk]},
    )
    assert exported["Content-Disposition"].startswith('attachment; filename="flows-')
    bundle = json.loads(exported.content)
    assert [f["key"] for f in bundle["flows"]] == [flow.key]
    assert bundle["hash"] == bundle_export([flow.key])["hash"]

    url = "/admin/integrations/bundleimport/import/"
    assert client.get(url).status_code == 403
    for codename in ("import_bundle", "view_bundleimport"):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    assert "Import a bundle" in client.get("/admin/integrations/bundleimport/").content.decode()
    edited = json.loads(json.dumps(bundle))
    edited["flows"][0]["condition"] = "order.id"
    from integrations.services.bundles import content_hash

    edited["hash"] = content_hash({"flows": edited["flows"], "lookups": edited["lookups"]})
    upload = SimpleUploadedFile("qa.json", json.dumps(edited).encode(), "application/json")

    shown = client.post(url, {"file": upload, "dry_run": "1"}).content.decode()

    assert "change    flow order-created-collect-payment" in shown
    assert "condition: &#x27;order.id&#x27;" in shown or "condition:" in shown
    assert not BundleImport.objects.exists()
    done = client.post(url, {"bundle": json.dumps(edited), "name": "qa.json", "apply": "1"})
    assert done.status_code == 302
    assert BundleImport.objects.get().name == "qa.json"
    assert Flow.objects.get(key=flow.key).condition == "order.id"


def test_a_mapping_another_flow_uses_here_or_a_malformed_bundle_is_refused(shipped):
    from integrations.models import Mapping
    from integrations.services.bundles import content_hash

    flow = Flow.objects.get(key="order-created-collect-payment")
    shared = FlowStep.objects.filter(flow=flow, mapping__isnull=False).first().mapping
    other = Flow.objects.exclude(pk=flow.pk).first()
    step = FlowStep.objects.filter(flow=other).first()
    step.mapping = shared
    step.save()

    plan = bundle_plan(bundle_export([flow.key]))

    assert any(
        f"mapping {shared.key} is also used here by flow {other.key}" in p for p in plan.problems
    )

    def rehashed(bundle):
        bundle["hash"] = content_hash({"flows": bundle["flows"], "lookups": bundle["lookups"]})
        return bundle

    bad = bundle_export([flow.key])
    bad["flows"][0]["steps"][0]["mapping"] = {"key": "no spaces allowed", "fields": []}
    with pytest.raises(DataError, match="bad key or no rows"):
        bundle_plan(rehashed(bad))
    bad = bundle_export([flow.key])
    bad["flows"][0]["steps"][0] = {"name": "x"}
    with pytest.raises(DataError, match="has no name or action"):
        bundle_plan(rehashed(bad))
    assert Mapping.objects.filter(key="no spaces allowed").count() == 0


def test_whether_a_flow_is_enabled_stays_the_environments_own(shipped):
    bundle = bundle_export(["order-created-collect-payment"])
    assert "enabled" not in bundle["flows"][0]
    Flow.objects.filter(key="order-created-collect-payment").update(enabled=False)
    edited = json.loads(json.dumps(bundle))
    edited["flows"][0]["condition"] = "order.id"
    from integrations.services.bundles import content_hash

    edited["hash"] = content_hash({"flows": edited["flows"], "lookups": edited["lookups"]})
    bundle_apply(edited, name="qa.json", user="ana")
    assert Flow.objects.get(key="order-created-collect-payment").enabled is False
