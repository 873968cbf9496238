from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security, deploy=False)
def check_encryption_keys(app_configs, **kwargs):
    from cryptography.fernet import Fernet

    problems = []
    keys = [k for k in settings.FIELD_ENCRYPTION_KEYS if k.strip()]
    for index, key in enumerate(keys):
        try:
            Fernet(key.strip().encode())
        except (ValueError, TypeError):
            problems.append(
                Error(
                    f"FIELD_ENCRYPTION_KEYS entry {index + 1} is not a valid Fernet key.",
                    hint="Generate one with `python manage.py generate_encryption_key`.",
                    id="integrations.E001",
                )
            )
    if not keys:
        check = Error if not settings.DEBUG else Warning
        problems.append(
            check(
                "FIELD_ENCRYPTION_KEYS is not set; secrets are encrypted with a key derived "
                "from SECRET_KEY.",
                hint="Set FIELD_ENCRYPTION_KEYS (comma-separated Fernet keys) in production.",
                id="integrations.W001" if settings.DEBUG else "integrations.E002",
            )
        )
    return problems


@register()
def check_queue_timeouts(app_configs, **kwargs):
    q = settings.Q_CLUSTER
    if q.get("timeout") and q.get("retry") and q["timeout"] >= q["retry"]:
        return [
            Error(
                "Q_CLUSTER timeout must be lower than retry, or tasks run twice.",
                id="integrations.E003",
            )
        ]
    return []
