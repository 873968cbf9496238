from django.core.management.base import BaseCommand

from integrations.services.connections import encryption_keys_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the first key of FIELD_ENCRYPTION_KEYS. "
        "Afterwards the old keys can be removed."
    )

    def handle(self, *args, **options):
        count = encryption_keys_rotate()
        self.stdout.write(f"re-encrypted {count} row(s)")
