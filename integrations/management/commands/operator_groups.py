"""Create or reset the "Viewer" and "Operator" groups for the ops team."""

from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction

# The apps whose rows operators look at; Viewer may see every one of their models.
APPS = ("integrations", "payments", "customers", "reconciliation")

# What an Operator may do beyond viewing: the admin actions, never editing config.
OPERATOR = (
    "integrations.operate_job",
    "integrations.replay_event",
    "integrations.test_connection",
    "payments.rebook_payment",
    "customers.review_customerconflict",
)


class Command(BaseCommand):
    help = (
        'Create or reset the groups "Viewer" (sees events, jobs, attempts, API calls, '
        'orders, configuration) and "Operator" (Viewer, and may retry, quarantine, discard, '
        "replay, test connections, rebook payments and mark customer conflicts reviewed). "
        "Configuration changes stay with the users you give change permissions to."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        view = Permission.objects.filter(
            content_type__app_label__in=APPS, codename__startswith="view_"
        )
        operate = [
            permission
            for label in OPERATOR
            for permission in Permission.objects.filter(
                content_type__app_label=label.partition(".")[0],
                codename=label.partition(".")[2],
            )
        ]
        for name, permissions in (("Viewer", list(view)), ("Operator", [*view, *operate])):
            group, _ = Group.objects.get_or_create(name=name)
            group.permissions.set(permissions)
            self.stdout.write(f"{name}: {len(permissions)} permissions")
