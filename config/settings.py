"""Settings for the integration platform.

Everything comes from the environment (django-environ) with a default that works on a
fresh clone: SQLite, the django-q2 ORM broker. DEBUG is off unless the environment
turns it on (``make demo`` and ``make run`` do); with it off the HTTPS settings default
to production values. Production sets at least SECRET_KEY, FIELD_ENCRYPTION_KEYS,
DATABASE_URL and ALLOWED_HOSTS (and SECURE_PROXY_SSL_HEADER behind a TLS proxy).
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
VAR_DIR.mkdir(parents=True, exist_ok=True)
# prometheus-client's multiprocess mode (integrations/kernel/metrics.py): every process of this
# machine writes what it counts here, and GET /metrics adds them up. Read when
# prometheus_client is first imported, which is after the settings.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "prometheus"))
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
env_file = BASE_DIR / ".env"
if env_file.exists():
    environ.Env.read_env(str(env_file))

# Off by default: the debug page shows a frame's locals (webhook secrets among them).
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-dev-only-change-me-in-production")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# HTTPS. Without DEBUG every default is the production one; a deployment behind a
# proxy that terminates TLS sets SECURE_PROXY_SSL_HEADER (e.g.
# "HTTP_X_FORWARDED_PROTO,https"), or every request looks like plain HTTP and is
# redirected. The webhook fast lane (config/wsgi.py) applies these too.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# A load balancer's health probe may speak plain HTTP.
SECURE_REDIRECT_EXEMPT = env.list("SECURE_REDIRECT_EXEMPT", default=[r"^health/(live/)?$"])
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
# includeSubDomains covers the subdomains of this service's own host only (not its
# parent domain); preload only matters if someone submits the domain to the list.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
_proxy_ssl_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) if _proxy_ssl_header else None
if SECURE_PROXY_SSL_HEADER is not None and len(SECURE_PROXY_SSL_HEADER) != 2:
    raise ValueError(
        'SECURE_PROXY_SSL_HEADER is "<META name>,<value>", e.g. HTTP_X_FORWARDED_PROTO,https'
    )

# Error reports (debug page, admin emails) also mask passwords inside connection URLs
# (REDIS_URL, DATABASE_URL) and credential-looking values in frame locals.
DEFAULT_EXCEPTION_REPORTER_FILTER = "integrations.logging.RedactingExceptionReporterFilter"

# Fernet keys (urlsafe base64, 32 bytes) used to encrypt connection credentials at
# rest. The first key encrypts; every key decrypts, so a new key is put first and
# `manage.py rotate_encryption_keys` re-encrypts before an old key is removed.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

INSTALLED_APPS = [
    # The admin's theme (django-unfold): before the admin, its simple-history
    # templates before simple-history's.
    "unfold",
    "unfold.contrib.simple_history",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "simple_history",
    "integrations",
    "customers",
    "payments",
    "reconciliation",
    # Admin (and API) login throttling; last, as its docs ask.
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's static files in production without a separate web server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Answers a locked-out login (429); last, as django-axes asks.
    "axes.middleware.AxesMiddleware",
]

# GET /metrics (Prometheus) answers a scrape that sends "Authorization: Bearer <this>";
# unset, only under DEBUG.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- Login throttling (django-axes) -----------------------------------------------
# Every password check (the admin's login, the API's Basic auth) goes through axes
# first: after AXES_FAILURE_LIMIT failures for one username from one address, that
# pair is locked out for AXES_COOLOFF_MINUTES (429), a correct password included.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
# Its admin pages are ours (integrations/admin.py): every action checks a permission.
AXES_ENABLE_ADMIN = False
AXES_VERBOSE = False  # no banner on every start; lockouts are still logged as warnings
# Behind TRUSTED_PROXY_COUNT reverse proxies of ours, the client's address is that many
# entries from the right of X-Forwarded-For (what a client puts further left is its
# own say); 0: the connection's address (integrations/authentication.py).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "integrations.authentication.client_address"
# Successful logins are not logged (one row per API call otherwise); failures are.
AXES_DISABLE_ACCESS_LOG = True

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + IMMEDIATE transactions let the web process and the worker share one file
    # without "database is locked" errors on the first write of a transaction.
    _db.setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    # A persistent connection matters: the ORM broker and intake would otherwise
    # reconnect on every request (measured ~15x slower in the django-q2 notes).
    _db.setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    # Health checks cost a round trip per request on the webhook hot path; enable
    # them where the database may drop idle connections (e.g. behind a proxy).
    _db.setdefault("CONN_HEALTH_CHECKS", env.bool("CONN_HEALTH_CHECKS", default=False))
# Webhook intake manages its own transactions; never wrap requests in one.
_db["ATOMIC_REQUESTS"] = False

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(VAR_DIR / "static"))
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on a missing root

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="payments@localhost")
# A hung mail server must not hold a job or the alert check (seconds).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
if env.str("EMAIL_URL", default=""):
    # smtp+tls://user:password@smtp.example.com:587 (django-environ): the SMTP backend
    # and its host, port, user, password and TLS.
    vars().update(env.email_url("EMAIL_URL"))

# The admin's theme (django-unfold).
UNFOLD = {
    "SITE_TITLE": "Integration admin",
    "SITE_HEADER": "Znode ⇄ Stripe integration",
    "SITE_SYMBOL": "sync_alt",
    "SHOW_HISTORY": True,
    "SHOW_VIEW_ON_SITE": False,
}

REDIS_URL = env.str("REDIS_URL", default="")

# django-q2 runs our tasks; our own tables own state, retries and quarantine, so a
# failed task is acknowledged (ack_failures) and never re-presented by the broker.
Q_CLUSTER = {
    "name": env.str("Q_CLUSTER_NAME", default="integrations"),
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=300),
    "retry": env.int("Q_RETRY", default=360),
    "max_attempts": 1,
    "ack_failures": True,
    "save_limit": env.int("Q_SAVE_LIMIT", default=250),
    "catch_up": False,
    "poll": 0.2,
    "label": "Task queue",
    "sync": env.bool("Q_SYNC", default=False),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Integration engine -----------------------------------------------------------
INTEGRATIONS = {
    # Connector classes, by dotted path; a deployment may add its own.
    "CONNECTORS": env.list(
        "INTEGRATIONS_CONNECTORS",
        default=[
            "integrations.connectors.stripe.connector.StripeConnector",
            "integrations.connectors.znode.connector.ZnodeConnector",
            "integrations.connectors.erp.connector.ErpConnector",
        ],
    ),
    # Largest webhook body accepted, in bytes (413 above it).
    "WEBHOOK_MAX_BODY_BYTES": env.int("WEBHOOK_MAX_BODY_BYTES", default=512 * 1024),
    # Stripe-Signature timestamp tolerance, seconds.
    "STRIPE_WEBHOOK_TOLERANCE": env.int("STRIPE_WEBHOOK_TOLERANCE", default=300),
    # How long a worker owns a claimed job before the sweeper may reclaim it.
    # Longer than the worst step (several calls at full timeout) and than Q_TIMEOUT,
    # so a live worker never loses its job to the sweeper mid-step.
    "JOB_LEASE_SECONDS": env.int("JOB_LEASE_SECONDS", default=600),
    # Concurrent webhooks in one process share one INSERT and one commit (see
    # integrations/services/intake_writer.py); off: one commit per request thread.
    "INTAKE_GROUP_COMMIT": env.bool("INTAKE_GROUP_COMMIT", default=True),
    # Minimum gap between two "drain the inbox" tasks sent by one web process;
    # 0 sends one per event.
    "INBOX_NUDGE_INTERVAL": env.float("INBOX_NUDGE_INTERVAL", default=1.0),
    # How often the sweeper runs (django-q2 schedule, minutes).
    "SWEEP_EVERY_MINUTES": env.int("SWEEP_EVERY_MINUTES", default=1),
    # GET /health/ answers 503 when no worker has said it is alive for this long
    # (each worker's main process says so every HEALTH_HEARTBEAT_SECONDS), when the
    # oldest job waiting to run waited longer than HEALTH_MAX_WAIT_SECONDS, or when
    # more than HEALTH_MAX_BACKLOG jobs wait (counted up to that, never the table).
    "HEALTH_HEARTBEAT_SECONDS": env.float("HEALTH_HEARTBEAT_SECONDS", default=10.0),
    "HEALTH_WORKER_STALE_SECONDS": env.float("HEALTH_WORKER_STALE_SECONDS", default=60.0),
    "HEALTH_MAX_WAIT_SECONDS": env.float("HEALTH_MAX_WAIT_SECONDS", default=900.0),
    "HEALTH_MAX_BACKLOG": env.int("HEALTH_MAX_BACKLOG", default=10_000),
    # Longest a due retry waits for a worker's retry waker (a thread that sleeps until
    # the earliest retry is due and re-checks at least this often, one indexed query;
    # see integrations/services/jobs.py RetryWaker). 0: due retries wait for the sweeper.
    "RETRY_WAKE_SECONDS": env.float("RETRY_WAKE_SECONDS", default=2.0),
    # Default retry policy for flows that do not set their own.
    "RETRY_BASE_SECONDS": env.int("RETRY_BASE_SECONDS", default=30),
    "RETRY_MAX_SECONDS": env.int("RETRY_MAX_SECONDS", default=3600),
    "RETRY_MAX_ATTEMPTS": env.int("RETRY_MAX_ATTEMPTS", default=8),
    # Longest Retry-After we honour before treating it as the cap.
    "RETRY_AFTER_MAX_SECONDS": env.int("RETRY_AFTER_MAX_SECONDS", default=6 * 3600),
    # Alerts (rules and channels in the admin): how often they are checked (minutes),
    # how many go out at once (the rest wait for the digest), how often a digest of
    # the held ones and the repeats goes out (minutes), and where the platform is
    # reached (https://ops.example.com), for links in the messages (blank: no links).
    "ALERTS_EVERY_MINUTES": env.int("ALERTS_EVERY_MINUTES", default=1),
    # This environment's name (dev, qa, prod): written into the flow bundles it exports
    # and shown in the admin, so a bundle says where it came from.
    "ENVIRONMENT_NAME": env.str("ENVIRONMENT_NAME", default="dev"),
    # Whether mapping suggestions use the [ai] extra's embedding model when it is
    # installed (pip install -e '.[ai]'); off: names, values and use alone.
    "MAPPING_ASSIST_SEMANTIC": env.bool("MAPPING_ASSIST_SEMANTIC", default=True),
    "ALERTS_MAX_AT_ONCE": env.int("ALERTS_MAX_AT_ONCE", default=5),
    "ALERTS_DIGEST_MINUTES": env.int("ALERTS_DIGEST_MINUTES", default=15),
    "ALERTS_SITE_URL": env.str("ALERTS_SITE_URL", default=""),
    # How often each process writes its dashboard counts (seconds; 0: only when asked).
    "STATS_FLUSH_SECONDS": env.float("STATS_FLUSH_SECONDS", default=5.0),
    # Bytes of request/response body kept on an ApiCall row.
    "API_CALL_BODY_LIMIT": env.int("API_CALL_BODY_LIMIT", default=16 * 1024),
    # Default outbound HTTP timeout, seconds (connect, read).
    "HTTP_TIMEOUT": (
        env.float("HTTP_CONNECT_TIMEOUT", default=5.0),
        env.float("HTTP_READ_TIMEOUT", default=30.0),
    ),
}

REST_FRAMEWORK = {
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The finance API's OpenAPI schema (/api/schema/) and its pages (/api/docs/, Swagger
# UI; /api/redoc/), served with their assets from our static files (no CDN: offline).
SPECTACULAR_SETTINGS = {
    "TITLE": "Znode ⇄ Stripe integration: finance API",
    "DESCRIPTION": "Payouts, their balance transactions and the finance exports (CSV, XLSX). "
    "HTTP Basic or the admin's session; the finance role (reconciliation.export_payout).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [
        "integrations.authentication.ThrottledBasicAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "SERVE_PERMISSIONS": ["reconciliation.api.ReadsTheDocs"],
    "PREPROCESSING_HOOKS": ["reconciliation.api.api_paths_only"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# "json": one JSON object a line, with the correlation id (integrations/logging.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "integrations.logging.RedactSecretsFilter"},
        "correlation": {"()": "integrations.logging.CorrelationFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "integrations.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["redact", "correlation"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # At DEBUG urllib3 logs each request line, paths included: a chat webhook's
        # path is its token.
        "urllib3": {"level": "WARNING"},
        # Django's own handlers (its DEBUG console, mail_admins) would print tracebacks
        # without the redaction filter: its records go through ours only.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django_q": {"level": env.str("Q_LOG_LEVEL", default="WARNING")},
    },
}

SIMPLE_HISTORY_REVERT_DISABLED = False
