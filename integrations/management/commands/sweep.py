from django.core.management.base import BaseCommand

from integrations.services.sweeper import sweep


class Command(BaseCommand):
    help = "Run the sweeper once: route stray inbox events, enqueue due and orphaned jobs."

    def handle(self, *args, **options):
        self.stdout.write(str(sweep()))
