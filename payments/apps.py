from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registering is an import side effect: actions with the engine's registry,
        # default flows and status tables with the installer.
        from payments import actions, checks, dashboard, flows  # noqa: F401
        from payments import settings as _settings  # noqa: F401  (integration settings)
