"""Registry of connector classes, loaded from settings in AppConfig.ready()."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from integrations.connectors.base import Connector
from integrations.kernel.exceptions import ConnectorConfigurationError

_connectors: dict[str, Connector] = {}


class ConnectorNotRegistered(ConnectorConfigurationError):
    pass


def load() -> None:
    _connectors.clear()
    for path in settings.INTEGRATIONS["CONNECTORS"]:
        cls = import_string(path)
        if not issubclass(cls, Connector):
            raise ConnectorConfigurationError(f"{path} is not a Connector subclass")
        if cls.key in _connectors:
            raise ConnectorConfigurationError(f"two connectors claim the kind {cls.key!r}")
        _connectors[cls.key] = cls()


def get(kind: str) -> Connector:
    try:
        return _connectors[kind]
    except KeyError:
        raise ConnectorNotRegistered(f"no connector is registered for {kind!r}") from None


def find(kind: str) -> Connector | None:
    return _connectors.get(kind)


def all_connectors() -> dict[str, Connector]:
    return dict(_connectors)
