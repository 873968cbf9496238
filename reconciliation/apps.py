from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ReconciliationConfig(AppConfig):
    name = "reconciliation"
    verbose_name = "Reconciliation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registering is an import side effect: the actions, the default flows and
        # what the alert check asks reconciliation.
        from reconciliation import actions, alerts, flows  # noqa: F401

        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="reconciliation-schedules")


def ensure_schedules(**kwargs) -> None:
    """Install (or fix) the django-q2 schedule of the daily drift check."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="reconciliation.drift",
        defaults={
            "func": "reconciliation.tasks.check_drift",
            "schedule_type": Schedule.DAILY,
            "repeats": -1,
        },
    )
