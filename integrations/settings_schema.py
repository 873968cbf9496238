"""Typed, documented settings for connections and integrations.

A connection's ``settings`` are declared by its connector
(``integrations/connectors/<kind>/settings.py``, exposed as the connector's
``settings_schema``); an integration's are declared by the domain apps, which call
:func:`register_integration_settings` at import time (from ``AppConfig.ready()``).
Everything that writes settings (CLI, admin, services) runs them through
:meth:`Schema.validate`, so stored values are typed JSON; code reads them with
:meth:`Schema.value` (or :func:`connection_setting` / :func:`integration_setting`),
which applies the declared default. The types and validation live in the kernel
(``integrations.kernel.settings``), where the connectors declare theirs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from integrations.kernel.settings import (  # noqa: F401  (the engine's names for them)
    EMPTY,
    FALSE_WORDS,
    TRUE_WORDS,
    TYPES,
    Schema,
    Setting,
    SettingsError,
    parse_cli,
    parse_cli_all,
    validate,
)

if TYPE_CHECKING:
    from integrations.models import Connection, Integration


def settings_markdown() -> str:
    """The documentation of every setting: what ``manage.py settings_doc`` prints and
    the README carries."""
    from integrations.choices import ConnectionKind
    from integrations.connectors import registry

    parts = ["### Connection settings"]
    for kind in ConnectionKind.values:
        connector = registry.find(kind)
        if connector is not None:
            parts += [
                f"#### {connector.display_name} connections (`--kind {kind}`)",
                connection_schema(kind).markdown(),
            ]
    parts += ["### Integration settings", integration_schema().markdown()]
    return "\n\n".join(parts) + "\n"


# --- where the schemas live ---------------------------------------------------------------
_integration_settings: dict[str, Setting] = {}


def register_integration_settings(*settings: Setting) -> None:
    """Declare settings of :class:`~integrations.models.Integration` (domain apps call
    this at import time). Registering the same setting again is a no-op."""
    for setting in settings:
        known = _integration_settings.get(setting.name)
        if known is not None and known != setting:
            raise ValueError(f"integration setting {setting.name!r} is registered twice")
        _integration_settings[setting.name] = setting


def integration_schema() -> Schema:
    return Schema(tuple(_integration_settings.values()))


def connection_schema(kind: str) -> Schema:
    from integrations.connectors import registry

    connector = registry.find(kind)
    if connector is None:
        raise SettingsError(f"no connector is registered for {kind!r}")
    return getattr(connector, "settings_schema", EMPTY)


def connection_setting(connection: Connection, name: str) -> Any:
    """Typed value of one of a connection's settings (or its default)."""
    try:
        return connection_schema(connection.kind).value(connection.settings, name)
    except SettingsError as exc:
        raise SettingsError(f"connection {connection.name}: {exc.message}") from None


def integration_setting(integration: Integration, name: str) -> Any:
    """Typed value of one of an integration's settings (or its default)."""
    try:
        return integration_schema().value(integration.settings, name)
    except SettingsError as exc:
        raise SettingsError(f"integration {integration.name}: {exc.message}") from None
