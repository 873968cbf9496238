"""Test settings: the real settings, with the queue run inline and fast hashing."""

from config.settings import *  # noqa: F403
from config.settings import INTEGRATIONS, Q_CLUSTER

# Tasks run synchronously in the test process, so "enqueue after commit" is observable
# with django_capture_on_commit_callbacks(execute=True).
Q_CLUSTER["sync"] = True
# Dashboard counts are written when a test asks (no thread writing outside its transaction).
INTEGRATIONS["STATS_FLUSH_SECONDS"] = 0
INTEGRATIONS["INBOX_NUDGE_INTERVAL"] = 0
# Suggestions rank the same whether or not the [ai] extra is installed; its own tests
# turn it on.
INTEGRATIONS["MAPPING_ASSIST_SEMANTIC"] = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
FIELD_ENCRYPTION_KEYS = ["p0YtP3oSe0XsmMm8ZJ-4Q1Q9hJ0C4yQwqgJ1v3FzP8s="]

# A file, not memory, for the SQLite test database: crash-recovery tests run a real
# worker in a subprocess that must see the same data.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}  # noqa: F405

# The test client speaks plain HTTP; tests of the redirect turn it on themselves.
SECURE_SSL_REDIRECT = False
