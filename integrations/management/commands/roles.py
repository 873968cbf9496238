"""`manage.py roles`: reset the ops team's groups to their definition."""

from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction

from integrations.roles import ROLES, roles_install


class Command(BaseCommand):
    help = (
        "Create the groups of the ops team's roles, or reset their permissions to the "
        f"definition (integrations/roles.py): {', '.join(ROLES)}. A migration creates "
        "them; run this after editing a group by hand. Users are added in the admin."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        for role, count in roles_install(Group, Permission).items():
            self.stdout.write(f"{role}: {count} permissions")
