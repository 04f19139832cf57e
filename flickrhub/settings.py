"""FlickrHub settings: one module, driven by the environment.

Every variable is documented with its default in `.env.example` (a test checks that the two
agree). With no `DATABASE_URL`, `BROKER_URL` or `REDIS_URL` the hub runs in its embedded
default: SQLite, local-memory cache and Dramatiq's in-memory broker, all in one process.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A `.env` beside manage.py is read if present; real environment variables win over it.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SERVICE_NAME = env.str("SERVICE_NAME", default="flickrhub")
SERVICE_ENV = env.str("SERVICE_ENV", default="local")
PRODUCTION = SERVICE_ENV == "production"
DEBUG = env.bool("DEBUG", default=False)

# Where the embedded default keeps its database, generated keys and staged files.
DATA_DIR = Path(env.str("FLICKRHUB_DATA_DIR", default=str(BASE_DIR / "var")))


def _generated_secret(name: str, make: object) -> str:
    """Outside production, a secret the operator did not set is generated once and kept in
    DATA_DIR (mode 0600), so the embedded default is safe without a hard-coded value and
    survives restarts. Production must set it explicitly (checked below)."""
    path = DATA_DIR / name
    if path.exists():
        return path.read_text().strip()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    value = make() if callable(make) else str(make)
    path.touch(mode=0o600)
    path.write_text(value)
    return value


SECRET_KEY = env.str("SECRET_KEY", default="") or (
    "" if PRODUCTION else _generated_secret("secret_key", lambda: secrets.token_urlsafe(50))
)
# Fernet keys for tokens and secrets at rest, newest first, comma-separated. Rotating: put a
# new key in front, run `manage.py rotate_encryption_keys`, then drop the old one.
ENCRYPTION_KEYS = env.list("FLICKRHUB_ENCRYPTION_KEYS", default=[]) or (
    [] if PRODUCTION else [_generated_secret("encryption_key", lambda: Fernet.generate_key().decode())]
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The hub's public address (e.g. https://hub.example.com), used in links it hands out.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="").rstrip("/")

if PRODUCTION:
    problems = []
    if DEBUG:
        problems.append("DEBUG must be off")
    if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure") or len(set(SECRET_KEY)) < 5:
        problems.append("SECRET_KEY must be set to a long random value (50+ characters)")
    if not ENCRYPTION_KEYS:
        problems.append("FLICKRHUB_ENCRYPTION_KEYS must hold at least one Fernet key")
    if not ALLOWED_HOSTS:
        problems.append("ALLOWED_HOSTS must name the hub's host names")
    if env.str("BROKER_URL", default="") and not env.str("REDIS_URL", default=""):
        problems.append(
            "REDIS_URL must be set when workers run apart from the web (BROKER_URL): the quota, "
            "circuit breakers, cache and coalescing are shared through it"
        )
    if problems:
        raise ImproperlyConfigured(
            "Refusing to start with SERVICE_ENV=production: "
            + "; ".join(problems)
            + ". See .env.example for every variable."
        )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_dramatiq",
    "flickrhub",
    "accounts",
    "jobs",
    "flickr",
]

# The benchmarks' baseline endpoint (/bench/insert) and its table: `make bench` turns it on in
# the hub it starts. Never set it in a deployment.
BENCH_ENDPOINTS = env.bool("BENCH_ENDPOINTS", default=False)
if BENCH_ENDPOINTS:
    INSTALLED_APPS.append("bench")

MIDDLEWARE = [
    "flickrhub.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "flickrhub.middleware.ApiBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "flickrhub.urls"
WSGI_APPLICATION = "flickrhub.wsgi.application"

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

# --- Database -------------------------------------------------------------------------------
# SQLite (embedded default) in WAL mode with IMMEDIATE transactions, so the web threads and
# the in-process worker threads queue for the write lock instead of failing with
# "database is locked" halfway through a transaction.
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'flickrhub.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
    # Persistent connections here too: opening the file and running the PRAGMAs again for every
    # request and every job was a twentieth of the embedded hub's CPU per job.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=300)
else:
    # Persistent connections: a new PostgreSQL connection per request costs ~9x in throughput
    # (PERF-NOTES). Health checks replace connections the server dropped.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=300)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A persistent connection is one per thread, which caps worker threads at PostgreSQL's
    # max_connections (100 by default). With a pool each process shares DB_POOL_MAX_SIZE
    # connections, and a worker gives its connection back while it waits on Flickr, so
    # hundreds of threads can have calls in flight.
    DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=0)
    if DB_POOL_MAX_SIZE > 0:
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django's pool hands connections back instead
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": DB_POOL_MAX_SIZE,
            "timeout": 30,
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate-limit state, locks, response cache) ------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CACHE_KEY_PREFIX = env.str("CACHE_KEY_PREFIX", default="flickrhub")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": 2,
                "SOCKET_TIMEOUT": 2,
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "flickrhub",
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }

# --- Broker -----------------------------------------------------------------------------------
BROKER_URL = env.str("BROKER_URL", default="")
if BROKER_URL:
    # Connection behaviour a web process and a worker need, unless the URL says otherwise:
    # heartbeats so dead peers are noticed, and short connect timeouts so an unreachable broker
    # becomes a quick 503 instead of a hung request.
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    _parts = urlsplit(BROKER_URL)
    _query = dict(parse_qsl(_parts.query))
    for _key, _value in {
        "heartbeat": "30",
        "connection_attempts": "2",
        "retry_delay": "0.5",
        "socket_timeout": "5",
        "blocked_connection_timeout": "30",
    }.items():
        _query.setdefault(_key, _value)
    BROKER_URL = urlunsplit(_parts._replace(query=urlencode(_query)))
_DRAMATIQ_MIDDLEWARE = [
    "dramatiq.middleware.TimeLimit",
    "dramatiq.middleware.Retries",
    "dramatiq.middleware.CurrentMessage",
    "django_dramatiq.middleware.DbConnectionsMiddleware",
    "jobs.middleware.JobContextMiddleware",
]
if BROKER_URL:
    DRAMATIQ_BROKER = {
        "BROKER": "dramatiq.brokers.rabbitmq.RabbitmqBroker",
        # Publisher confirms: a 202 means RabbitMQ has the message, not merely our socket buffer.
        "OPTIONS": {"url": BROKER_URL, "confirm_delivery": True},
        "MIDDLEWARE": _DRAMATIQ_MIDDLEWARE,
    }
else:
    DRAMATIQ_BROKER = {
        "BROKER": "dramatiq.brokers.stub.StubBroker",
        "OPTIONS": {},
        "MIDDLEWARE": _DRAMATIQ_MIDDLEWARE,
    }
DRAMATIQ_AUTODISCOVER_MODULES = ["tasks"]
EMBEDDED_BROKER = not BROKER_URL

# Worker threads per queue (the original's names). In production each is the thread count of
# that queue's `rundramatiq` pool; embedded, the in-process worker threads.
WORKER_CONCURRENCY = env.int("WORKER_CONCURRENCY", default=8)
# How often an idle worker looks at its delayed messages (quota waits, short retries), in ms.
# Dramatiq's default of 1,000 lets a call fire up to a second after its quota slot, bunching
# calls; `manage.py rundramatiq` passes this on to the worker processes it starts.
WORKER_POLL_MS = env.int("WORKER_POLL_MS", default=100)
os.environ.setdefault("dramatiq_worker_timeout", str(WORKER_POLL_MS))
WORKER_REST_CONCURRENCY = env.int("WORKER_REST_CONCURRENCY", default=WORKER_CONCURRENCY)
WORKER_UPLOAD_CONCURRENCY = env.int("WORKER_UPLOAD_CONCURRENCY", default=2)
WORKER_REPLACE_CONCURRENCY = env.int("WORKER_REPLACE_CONCURRENCY", default=2)
# Callback deliveries (the `flickr_callbacks` queue): mostly waiting on receivers, not on Flickr.
WORKER_CALLBACK_CONCURRENCY = env.int("WORKER_CALLBACK_CONCURRENCY", default=4)

# --- Jobs -------------------------------------------------------------------------------------
JOB_RETRY_ATTEMPTS = env.int("JOB_RETRY_ATTEMPTS", default=3)
JOB_RETRY_MIN_BACKOFF_MS = env.int("JOB_RETRY_MIN_BACKOFF_MS", default=1000)
JOB_RETRY_MAX_BACKOFF_MS = env.int("JOB_RETRY_MAX_BACKOFF_MS", default=300_000)
# A running job whose worker has not finished it within this many seconds is presumed dead and
# handed to another worker by the sweeper (the Flickr call itself times out far sooner).
JOB_LEASE_SECONDS = env.int("JOB_LEASE_SECONDS", default=300)
# The same for upload and replace jobs, which may spend many minutes sending a file.
JOB_UPLOAD_LEASE_SECONDS = env.int("JOB_UPLOAD_LEASE_SECONDS", default=3600)
# A job still `queued` this long after it was published is published again by the sweeper.
JOB_REPUBLISH_AFTER_SECONDS = env.int("JOB_REPUBLISH_AFTER_SECONDS", default=60)
JOB_SWEEP_INTERVAL_SECONDS = env.int("JOB_SWEEP_INTERVAL_SECONDS", default=15)
JOB_PARAMS_MAX_BYTES = env.int("JOB_PARAMS_MAX_BYTES", default=64 * 1024)
JOB_META_MAX_BYTES = env.int("JOB_META_MAX_BYTES", default=16 * 1024)
# Largest JSON request body the API reads; larger ones get 413 before they are read.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)

# --- Uploads and replacements -----------------------------------------------------------------
# Largest photo or video file accepted (Flickr's photo limit); counted while the body streams.
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", default=200 * 1024 * 1024)
# Where a file waits between the request and the worker's upload to Flickr. Web processes and
# upload/replace workers must all see it: one machine's disk, a shared volume, or an object
# store through a Django storage backend (UPLOAD_STORAGE_BACKEND + UPLOAD_STORAGE_OPTIONS).
UPLOAD_STAGING_DIR = Path(env.str("UPLOAD_STAGING_DIR", default=str(DATA_DIR / "uploads")))
UPLOAD_STORAGE_BACKEND = env.str(
    "UPLOAD_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"
)
UPLOAD_STORAGE_OPTIONS = env.json("UPLOAD_STORAGE_OPTIONS", default={})
# A staged file whose job is gone or finished is removed by the sweeper after this long.
UPLOAD_ORPHAN_GRACE_SECONDS = env.int("UPLOAD_ORPHAN_GRACE_SECONDS", default=3600)
# Request bodies are spooled to disk here while they stream in (empty: the system's temp dir).
FILE_UPLOAD_TEMP_DIR = env.str("UPLOAD_TEMP_DIR", default="") or None

# --- Flickr -----------------------------------------------------------------------------------
# The server's Flickr app. Accounts linked through it are signed with it; accounts linked with
# an app of their own are signed with that one.
FLICKR_API_KEY = env.str("FLICKR_API_KEY", default="")
FLICKR_API_SECRET = env.str("FLICKR_API_SECRET", default="")
FLICKR_REST_URL = env.str("FLICKR_REST_URL", default="https://api.flickr.com/services/rest/")
FLICKR_UPLOAD_URL = env.str("FLICKR_UPLOAD_URL", default="https://up.flickr.com/services/upload/")
FLICKR_REPLACE_URL = env.str("FLICKR_REPLACE_URL", default="https://up.flickr.com/services/replace/")
FLICKR_OAUTH_REQUEST_TOKEN_URL = env.str(
    "FLICKR_OAUTH_REQUEST_TOKEN_URL", default="https://www.flickr.com/services/oauth/request_token"
)
FLICKR_OAUTH_AUTHORIZE_URL = env.str(
    "FLICKR_OAUTH_AUTHORIZE_URL", default="https://www.flickr.com/services/oauth/authorize"
)
FLICKR_OAUTH_ACCESS_TOKEN_URL = env.str(
    "FLICKR_OAUTH_ACCESS_TOKEN_URL", default="https://www.flickr.com/services/oauth/access_token"
)
FLICKR_TIMEOUT_SECONDS = env.float("FLICKR_TIMEOUT_SECONDS", default=30.0)
# An upload's wait for Flickr's answer once the file is sent (big files take a while).
FLICKR_UPLOAD_TIMEOUT_SECONDS = env.float("FLICKR_UPLOAD_TIMEOUT_SECONDS", default=300.0)
# Let people linking an account bring their own Flickr app key and secret (/connect/ and
# POST /api/v1/auth/start); off, every account is linked through the hub's app above.
CONNECT_ALLOW_USER_APPS = env.bool("CONNECT_ALLOW_USER_APPS", default=False)
# Serve the sandbox Flickr inside the hub process and point the hub at it (README: sandbox mode).
FLICKR_SANDBOX = env.bool("FLICKR_SANDBOX", default=False)
FLICKR_SANDBOX_PORT = env.int("FLICKR_SANDBOX_PORT", default=8099)

# --- Quota, circuit breaker, back-pressure ---------------------------------------------------
# Calls per hour each Flickr consumer key may make (Flickr documents 3,600), spread evenly,
# with this many calls of burst allowance.
FLICKR_QUOTA_PER_HOUR = env.int("FLICKR_QUOTA_PER_HOUR", default=3600)
FLICKR_QUOTA_BURST = env.int("FLICKR_QUOTA_BURST", default=2)
# While Redis is down each worker process paces itself alone, at the quota divided by this
# many processes: set it to the number of worker processes that call Flickr with one key.
FLICKR_QUOTA_LOCAL_SHARE = env.int("FLICKR_QUOTA_LOCAL_SHARE", default=4)
# Fair queueing (jobs/dispatcher.py): when a key's calls must wait for quota they wait in the
# database and a dispatcher releases them by weighted shares of the API clients, then of their
# accounts, every FLICKR_DISPATCH_INTERVAL_MS. Off: first in, first out.
FLICKR_FAIR_QUEUEING = env.bool("FLICKR_FAIR_QUEUEING", default=True)
FLICKR_DISPATCH_INTERVAL_MS = env.int("FLICKR_DISPATCH_INTERVAL_MS", default=200)
# A normal-priority job that has waited this long for quota goes with the high-priority ones.
FLICKR_PRIORITY_AGING_SECONDS = env.int("FLICKR_PRIORITY_AGING_SECONDS", default=60)
# The circuit of a key opens after this many retryable failures in a row (or at once on
# Flickr's code 100), for this long (longer for a disabled key), then lets one probe through.
BREAKER_FAILURE_THRESHOLD = env.int("BREAKER_FAILURE_THRESHOLD", default=5)
BREAKER_COOLDOWN_SECONDS = env.int("BREAKER_COOLDOWN_SECONDS", default=30)
BREAKER_KEY_DISABLED_COOLDOWN_SECONDS = env.int("BREAKER_KEY_DISABLED_COOLDOWN_SECONDS", default=900)
# Unfinished jobs an API client may have; beyond it, enqueue answers 429 ERR_QUEUE_BUSY.
JOB_MAX_IN_FLIGHT_PER_CLIENT = env.int("JOB_MAX_IN_FLIGHT_PER_CLIENT", default=10_000)
# How long an Idempotency-Key is remembered.
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)
# The longest `?wait=` an API call may hold its answer for.
API_MAX_WAIT_SECONDS = env.int("API_MAX_WAIT_SECONDS", default=60)
# A `?wait=` is woken when its job ends (jobs/job_ends.py); it also reads the job again this
# often, in case that announcement was lost (Redis down).
API_WAIT_POLL_MS = env.int("API_WAIT_POLL_MS", default=1000)
# How long each process keeps an API key's client and an account it read (accounts/lookups.py):
# a revoked key or account is refused by the other processes at most this much later. 0: off.
API_LOOKUP_CACHE_SECONDS = env.float("API_LOOKUP_CACHE_SECONDS", default=1.0)
# With RabbitMQ, an enqueue that does not wait for its job answers once its row is committed and
# leaves the publish (and its confirm) to a thread of the process, while the broker is known to
# take messages (jobs/background_publish.py). false: every enqueue waits for the broker's confirm.
API_PUBLISH_IN_BACKGROUND = env.bool("API_PUBLISH_IN_BACKGROUND", default=True)
# The most items a paginated walk ("paginate": true) may gather into one result.
PAGINATE_MAX_ITEMS = env.int("PAGINATE_MAX_ITEMS", default=20_000)
# Failed jobs' messages kept in RabbitMQ's flickr_dlq queue (oldest dropped beyond it).
DLQ_MAX_LENGTH = env.int("DLQ_MAX_LENGTH", default=100_000)

# --- Cache, callbacks, observability (the original's names) ----------------------------------
CACHE_ENABLED = env.bool("CACHE_ENABLED", default=True)
CACHE_TTL_SECONDS = env.int("CACHE_TTL_SECONDS", default=300)
CALLBACK_ENABLED = env.bool("CALLBACK_ENABLED", default=True)
CALLBACK_RETRY_ATTEMPTS = env.int("CALLBACK_RETRY_ATTEMPTS", default=3)
CALLBACK_RETRY_DELAY_MS = env.int("CALLBACK_RETRY_DELAY_MS", default=1000)
# Hosts (or IPs) a callback may reach even though they are loopback or private: for
# development and tests only.
CALLBACK_ALLOWED_HOSTS = env.list("CALLBACK_ALLOWED_HOSTS", default=[])
# How long one callback POST may take to connect, and then to answer.
CALLBACK_TIMEOUT_SECONDS = env.float("CALLBACK_TIMEOUT_SECONDS", default=10.0)
# The wait between tries doubles from CALLBACK_RETRY_DELAY_MS up to this.
CALLBACK_RETRY_MAX_DELAY_MS = env.int("CALLBACK_RETRY_MAX_DELAY_MS", default=3_600_000)
OBS_API_URL = env.str("OBS_API_URL", default="")
OBS_API_KEY = env.str("OBS_API_KEY", default="")
# Log shipping (flickrhub/obs.py): log the sink's answers; the original's tenant id; batching.
OBS_DEBUG = env.bool("OBS_DEBUG", default=False)
OBS_TENANT_ID = env.str("TENANT_ID", default="")
OBS_BATCH_SIZE = env.int("OBS_BATCH_SIZE", default=100)
OBS_BUFFER_SIZE = env.int("OBS_BUFFER_SIZE", default=10_000)
OBS_FLUSH_INTERVAL_MS = env.int("OBS_FLUSH_INTERVAL_MS", default=1000)
OBS_TIMEOUT_SECONDS = env.float("OBS_TIMEOUT_SECONDS", default=5.0)
# How long a job waits for the sink's answer about its Flickr call's event, while the sink
# answers that fast (returnvalue.observability); 0 never waits.
OBS_REPORT_WAIT_MS = env.int("OBS_REPORT_WAIT_MS", default=200)

# --- Retention (the original's names; 0 keeps forever) ----------------------------------------
# Ended jobs are deleted this many days after they ended, with their callback deliveries and
# staged files; their status then answers 410 ERR_JOB_EXPIRED for JOB_TOMBSTONE_DAYS more.
JOB_TTL_COMPLETE_DAYS = env.int("JOB_TTL_COMPLETE_DAYS", default=30)
JOB_TTL_FAIL_DAYS = env.int("JOB_TTL_FAIL_DAYS", default=90)
JOB_TOMBSTONE_DAYS = env.int("JOB_TOMBSTONE_DAYS", default=365)
for _name in ("JOB_TTL_COMPLETE_DAYS", "JOB_TTL_FAIL_DAYS", "JOB_TOMBSTONE_DAYS"):
    if globals()[_name] < 0:
        raise ImproperlyConfigured(f"{_name} must be 0 (keep forever) or a number of days, not negative.")

# --- Auth, i18n, static -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(DATA_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    "uploads": {
        "BACKEND": UPLOAD_STORAGE_BACKEND,
        "OPTIONS": UPLOAD_STORAGE_OPTIONS
        or (
            {"location": str(UPLOAD_STAGING_DIR), "file_permissions_mode": 0o600}
            if UPLOAD_STORAGE_BACKEND.endswith("FileSystemStorage")
            else {}
        ),
    },
}
# Serve static files from the finders when collectstatic has not run (embedded default).
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.authentication.IsApiClient"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "flickrhub.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "FlickrHub API",
    "DESCRIPTION": (
        "Queue Flickr API calls for linked Flickr accounts and read their results. "
        "Every answer is an envelope {request_id, data, error}."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Operations: metrics, health, worker lifecycle ---------------------------------------------
# django-prometheus: HTTP metrics (its middleware first and last) and database metrics (its
# wrappers of the same database backends).
INSTALLED_APPS += ["django_prometheus"]
MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    *MIDDLEWARE,
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]
DATABASES["default"]["ENGINE"] = {
    # django-prometheus's backend with a health check that needs no round trip (pgbackend/base.py)
    "django.db.backends.postgresql": "flickrhub.pgbackend",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}.get(DATABASES["default"]["ENGINE"], DATABASES["default"]["ENGINE"])
DRAMATIQ_BROKER["MIDDLEWARE"] = [
    *DRAMATIQ_BROKER["MIDDLEWARE"],
    "flickrhub.metrics.WorkerMetricsMiddleware",
    "flickrhub.workers.WorkerOpsMiddleware",
]
# /metrics answers scrapes from these networks, or with `Authorization: Bearer METRICS_TOKEN`.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])
# Each worker pool's metrics exporter (0 turns it off); needs PROMETHEUS_MULTIPROC_DIR.
WORKER_METRICS_HOST = env.str("WORKER_METRICS_HOST", default="0.0.0.0")  # noqa: S104
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=9191)
# /readyz gives each dependency this long to answer.
READYZ_TIMEOUT_SECONDS = env.float("READYZ_TIMEOUT_SECONDS", default=2.0)
# On SIGTERM a worker finishes the jobs in hand for at most this long (rundramatiq
# --worker-shutdown-timeout in docker/entrypoint.sh; manage.py serve).
WORKER_SHUTDOWN_TIMEOUT_MS = env.int("WORKER_SHUTDOWN_TIMEOUT_MS", default=30_000)
# Worker processes record a heartbeat this often (0: never), and touch this file if set.
WORKER_HEARTBEAT_SECONDS = env.int("WORKER_HEARTBEAT_SECONDS", default=10)
WORKER_HEARTBEAT_FILE = env.str("WORKER_HEARTBEAT_FILE", default="")

# --- Logging ----------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING_CONFIG = None  # flickrhub.logging configures structlog and the stdlib root logger

from flickrhub.logconfig import configure_logging  # noqa: E402

configure_logging(level=LOG_LEVEL, json=not DEBUG, service=SERVICE_NAME, env=SERVICE_ENV)
