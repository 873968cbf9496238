"""One command for the whole platform: the web app and the django-q2 worker."""

import signal
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand

from integrations import processes
from integrations.kernel.metrics import multiprocess_dir_clear


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Serve the admin and webhooks, with the django-q2 worker cluster beside it."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--no-worker", action="store_true", help="Web only.")

    def handle(self, *args, addrport, no_worker, **options):
        worker = None
        # SIGTERM (from a supervisor, `timeout`, CI) unwinds like Ctrl-C so the
        # worker is stopped below.
        signal.signal(signal.SIGTERM, _interrupt)
        multiprocess_dir_clear()  # the metrics of an earlier run's processes
        if not no_worker:
            worker = processes.spawn([sys.executable, "manage.py", "worker"])
            self.stdout.write(f"worker started (pid {worker.pid})")
        try:
            call_command("runserver", addrport, use_reloader=False)
        except KeyboardInterrupt:
            pass
        finally:
            if worker:
                processes.stop([worker])
