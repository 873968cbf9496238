"""Create (or show) the local admin login used by `make run` / `make demo`."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create a superuser with a random password (development) and print the login."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        path = settings.VAR_DIR / "admin-login.txt"
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        password = None
        if user and path.exists():
            stored_user, _, stored_password = path.read_text().strip().partition(":")
            if stored_user == username and user.check_password(stored_password):
                password = stored_password
        if password is None:
            password = secrets.token_urlsafe(12)
            if user is None:
                user = user_model.objects.create_superuser(
                    username, f"{username}@localhost", password
                )
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
            path.write_text(f"{username}:{password}\n")
            path.chmod(0o600)
        self.stdout.write(f"admin login: {username} / {password}")
