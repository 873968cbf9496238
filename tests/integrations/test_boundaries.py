"""The connector boundary (issue 8): domain apps reach a system only through
``connection.client()``, never by importing a connector's client module."""

import ast
from pathlib import Path

import pytest

from integrations.connectors.erp.client import ErpClient
from integrations.connectors.stripe.client import StripeGateway
from integrations.connectors.znode.client import ZnodeClient

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_APPS = ("payments", "customers", "reconciliation")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_domain_apps_import_no_connector_client():
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for app in DOMAIN_APPS
        for path in sorted((ROOT / app).rglob("*.py"))
        for name in sorted(_imports(path))
        if name.startswith("integrations.connectors.")
        and (name.endswith(".client") or ".client." in name)
    ]
    assert offenders == []


def _engine_imports(package: str, allowed: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in sorted(_imports(path))
        if name.startswith("integrations")
        and not name.startswith(allowed)
        and name != "integrations"
    ]


def test_the_kernel_imports_nothing_above_it():
    assert _engine_imports("integrations/kernel", ("integrations.kernel",)) == []


def test_connectors_stand_on_the_kernel_only():
    """Not the engine's models, services, registry or settings: the engine reaches
    the connectors through the registry, never the other way round."""
    allowed = ("integrations.kernel", "integrations.connectors")
    assert _engine_imports("integrations/connectors", allowed) == []


def test_the_engine_reaches_connectors_only_through_the_registry():
    """The engine imports the registry and the base classes (events, fingerprints,
    the poll store), never a connector's own modules: not its client, nor its
    poller (``sync.py``), which runs as ``Connector.poll``."""
    allowed = ("integrations.connectors.registry", "integrations.connectors.base")
    engine = [
        path
        for path in sorted((ROOT / "integrations").rglob("*.py"))
        if not path.is_relative_to(ROOT / "integrations" / "connectors")
    ]
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in engine
        for name in sorted(_imports(path))
        if name.startswith("integrations.connectors.") and not name.startswith(allowed)
    ]
    assert engine and offenders == []


def test_nothing_outside_a_connector_imports_its_poller():
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for package in ("integrations", *DOMAIN_APPS)
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in sorted(_imports(path))
        if ".sync" in name
        and name.startswith("integrations.connectors.")
        and not path.is_relative_to(ROOT / "integrations" / "connectors")
    ]
    assert offenders == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fixture", "client_class"),
    [
        ("stripe_connection", StripeGateway),
        ("erp_connection", ErpClient),
        ("znode_connection", ZnodeClient),
    ],
)
def test_a_connection_gives_its_connectors_client_once(request, fixture, client_class):
    connection = request.getfixturevalue(fixture)
    client = connection.client()
    assert type(client) is client_class and client.connection is connection
    assert connection.client() is client  # one per loaded row


@pytest.mark.django_db
def test_a_saved_or_reloaded_connection_builds_a_new_client(erp_connection):
    """A client is built from the row's values: after an update it must not outlive them."""
    first = erp_connection.client()
    erp_connection.base_url = "http://erp.example.invalid"
    erp_connection.save()
    second = erp_connection.client()
    assert second is not first and second.base == "http://erp.example.invalid"
    erp_connection.refresh_from_db()
    assert erp_connection.client() is not second


def test_webhooks_are_received_by_a_lean_drf_view():
    """The design card's DRF, with the signature as the only gate: no authentication
    classes, no parsers before the signature holds, a named permission."""
    from django.urls import resolve

    from integrations.views import SignedByTheSystem, WebhookView

    view = resolve("/webhooks/stripe/any-token/").func.view_class
    assert view is WebhookView
    assert view.authentication_classes == () and view.parser_classes == ()
    assert view.permission_classes == (SignedByTheSystem,)


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "options", "head", "put", "delete"])
def test_the_webhook_view_answers_nothing_but_post(client, stripe_connection, method):
    """No DRF metadata (OPTIONS) or other verb reaches the view: 405, nothing stored."""
    from integrations.models import InboundEvent

    response = getattr(client, method)(stripe_connection.webhook_path)
    assert response.status_code == 405
    assert InboundEvent.objects.count() == 0
