"""Create or reset the "Finance" group: the finance role of the exports and the API."""

from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction

# What finance does: reads payouts, their transactions and the journal as posted,
# keeps the GL map (history-tracked), and exports. Deleting GL rows stays with admins.
FINANCE = (
    "reconciliation.view_payout",
    "reconciliation.view_balancetransaction",
    "reconciliation.view_journalentry",
    "reconciliation.view_journalline",
    "reconciliation.view_glaccount",
    "reconciliation.add_glaccount",
    "reconciliation.change_glaccount",
    "reconciliation.export_payout",
)


class Command(BaseCommand):
    help = (
        'Create or reset the group "Finance": sees payouts, balance transactions, journal '
        "entries and the GL map, edits the GL map, and exports payouts (admin and API)."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        permissions = []
        for label in FINANCE:
            app_label, _, codename = label.partition(".")
            permissions.append(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group, _ = Group.objects.get_or_create(name="Finance")
        group.permissions.set(permissions)
        self.stdout.write(f"Finance: {len(permissions)} permissions")
