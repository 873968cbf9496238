"""`manage.py settings_doc`: the settings tables the README carries."""

from django.core.management.base import BaseCommand

from integrations.settings_schema import settings_markdown


class Command(BaseCommand):
    help = (
        "Print every connection and integration setting as Markdown tables (the README's "
        "'Configuration' section between the settings markers is this output)."
    )
    requires_system_checks = []  # documentation only; keep the output clean

    def handle(self, *args, **options):
        self.stdout.write(settings_markdown(), ending="")
