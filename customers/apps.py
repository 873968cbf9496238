from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = "Customers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registering is an import side effect: the field-ownership table's default.
        from customers import ownership  # noqa: F401
