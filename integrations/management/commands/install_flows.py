from django.core.management.base import BaseCommand

from integrations.services.flows import flows_install_defaults, lookups_install_defaults


class Command(BaseCommand):
    help = "Install or upgrade the shipped default flows; operator edits are never overwritten."

    def handle(self, *args, **options):
        tables = lookups_install_defaults()
        if tables:
            self.stdout.write(f"lookup tables created: {', '.join(tables)}")
        report = flows_install_defaults()
        for label in ("created", "upgraded", "kept_customized", "unchanged"):
            keys = getattr(report, label)
            if keys:
                self.stdout.write(f"{label}: {', '.join(keys)}")
