from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = "Customers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registering is an import side effect: the actions, the default flows and
        # the field-ownership table's default.
        from customers import actions, flows, ownership  # noqa: F401

        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="customers-schedules")


def ensure_schedules(**kwargs) -> None:
    """Install (or fix) the django-q2 schedule of the address-book sweep."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="customers.sweep",
        defaults={
            "func": "customers.tasks.sweep_address_books",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
