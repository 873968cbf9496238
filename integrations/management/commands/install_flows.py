from django.core.management.base import BaseCommand

from integrations.kernel.exceptions import IntegrationError
from integrations.models import Integration
from integrations.registry import setup_problems
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
        # The installed tables against each store: a state the store lacks, or one
        # its order-state write ignores, is said now rather than at the first payment.
        for integration in Integration.objects.filter(enabled=True).order_by("name"):
            try:
                problems = setup_problems(integration=integration)
            except IntegrationError as error:
                problems = [f"could not check the store: {error}"]
            for problem in problems:
                self.stderr.write(f"WARNING {integration.name}: {problem}")
