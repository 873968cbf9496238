"""Django's ``dumpdata``, with a warning when the dump holds encrypted secrets.

Secrets never leave the database in clear, so ``dumpdata`` writes them as masks
(``<sealed api_key=•••>``) and ``loaddata`` of such a dump cannot bring a connection
back. The supported backup is a database dump plus the keys (README, Deployment).
"""

from django.apps import apps
from django.core.management.commands import dumpdata

from integrations.fields import EncryptedJSONField

WARNING = (
    "{models}: secrets are written as masks, so this dump cannot restore them. "
    "Back up with a database dump (pg_dump) and keep FIELD_ENCRYPTION_KEYS "
    "and SECRET_KEY (README, Deployment: backups)."
)


def _named(model, labels) -> bool:
    names = {model._meta.app_label, model._meta.label_lower}
    return any(label.lower() in names for label in labels)


class Command(dumpdata.Command):
    help = dumpdata.Command.help + " Encrypted secrets are written as masks (not a backup)."

    def handle(self, *app_labels, **options):
        sealed = [
            model._meta.label
            for model in apps.get_models()
            if any(isinstance(f, EncryptedJSONField) for f in model._meta.concrete_fields)
            and (not app_labels or _named(model, app_labels))
            and not _named(model, options.get("exclude") or [])
        ]
        if sealed:
            self.stderr.write(self.style.WARNING(WARNING.format(models=", ".join(sealed))))
        return super().handle(*app_labels, **options)
