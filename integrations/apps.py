from django.apps import AppConfig
from django.db.models.signals import post_migrate, post_save


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integration engine"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from integrations import (
            checks,  # noqa: F401  (registers system checks)
            db,  # noqa: F401  (registers the any_of lookup)
            mapping,  # noqa: F401  (registers built-in transforms)
        )
        from integrations.connectors import registry
        from integrations.kernel.http import set_call_recorder
        from integrations.models import Connection
        from integrations.services.api_calls import api_call_store, api_calls_store
        from integrations.views import forget_connection

        registry.load()
        set_call_recorder(api_call_store, api_calls_store)  # the kernel's calls become ApiCall rows
        # Cache invalidation is the one thing signals are used for.
        post_save.connect(forget_connection, sender=Connection, dispatch_uid="forget-connection")
        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="ensure-schedules")


def ensure_schedules(**kwargs) -> None:
    """Install (or fix) the django-q2 schedule of the sweeper."""
    from django.conf import settings
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="integrations.sweeper",
        defaults={
            "func": "integrations.tasks.run_sweeper",
            "schedule_type": Schedule.MINUTES,
            "minutes": settings.INTEGRATIONS["SWEEP_EVERY_MINUTES"],
            "repeats": -1,
        },
    )
    from integrations.services.polling import poll_schedules_sync

    poll_schedules_sync()
