"""Settings of an ERP connection (``Connection.settings``)."""

from __future__ import annotations

from integrations.kernel.settings import Setting

SETTINGS = (
    Setting(
        "client_class",
        "str",
        None,
        "Dotted path of an ErpClient subclass for this ERP's API (unset: the generic client).",
    ),
    Setting(
        "health_path",
        "str",
        "/",
        "Path that `connection test` reads, relative to the base URL.",
    ),
)
