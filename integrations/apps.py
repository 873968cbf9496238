from django.apps import AppConfig
from django.conf import settings
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
        from integrations.kernel import stats
        from integrations.kernel.http import set_call_recorder
        from integrations.models import Connection
        from integrations.services.api_calls import api_call_store, api_calls_store
        from integrations.services.stats import tallies_write
        from integrations.views import forget_connection

        registry.load()
        stats.set_flusher(tallies_write)  # the dashboard's counts become Tally rows
        stats.set_interval(settings.INTEGRATIONS["STATS_FLUSH_SECONDS"])
        set_call_recorder(api_call_store, api_calls_store)  # the kernel's calls become ApiCall rows
        # Cache invalidation is the one thing signals are used for.
        post_save.connect(forget_connection, sender=Connection, dispatch_uid="forget-connection")
        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="ensure-schedules")


def ensure_schedules(**kwargs) -> None:
    """Install (or fix) the django-q2 schedules of the sweeper and the alert check,
    and the alert rules as shipped where a kind has none."""
    from django.conf import settings
    from django_q.models import Schedule

    from integrations.services.alerts import alert_rules_install

    for name, func, minutes in (
        ("integrations.sweeper", "run_sweeper", "SWEEP_EVERY_MINUTES"),
        ("integrations.alerts", "check_alerts", "ALERTS_EVERY_MINUTES"),
    ):
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": f"integrations.tasks.{func}",
                "schedule_type": Schedule.MINUTES,
                "minutes": settings.INTEGRATIONS[minutes],
                "repeats": -1,
            },
        )
    alert_rules_install()
    from integrations.services.polling import poll_schedules_sync

    poll_schedules_sync()
