"""Parley's settings: one file, every value from the environment with an embedded default.

With no environment at all Parley runs on SQLite (WAL), channels' in-memory layer, Celery
tasks executed in-process, the local-memory cache and the console email backend. Setting
DATABASE_URL and REDIS_URL switches to PostgreSQL and Redis with the same code.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "", *, secret: bool = False) -> str:
    """A string from the environment.

    A secret may come from a file instead: NAME_FILE (a path, as Docker and systemd
    credentials provide) is read when set. Only secrets take that rule: another variable's
    `_FILE` twin may mean something of its own (LLM_ENDPOINTS_FILE names a file of endpoints,
    read by its own setting), and reading it as the variable too would declare it twice.
    """
    file_path = os.environ.get(f"{name}_FILE") if secret else None
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"{name}_FILE: cannot read {file_path!r}: {exc.strerror}"
            ) from None
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}: expected true/false (or 1/0), got {raw!r}")


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected a whole number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}: must be at least {minimum}, got {value}")
    return value


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_networks(name: str, default: list[str] | None = None) -> list[str]:
    """Comma-separated IP addresses or ranges (10.20.0.0/16), each checked and normalised."""
    networks = []
    for item in env_list(name, default):
        try:
            if "/" in item:
                networks.append(str(ipaddress.ip_network(item, strict=False)))
            else:
                networks.append(str(ipaddress.ip_address(item)))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {item!r} is not an address range like 10.20.0.0/16 "
                "or an address like 10.20.0.7"
            ) from None
    return networks


def env_rate_limits(name: str, known: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Rate limits as JSON, `{"scope": [count, window seconds], ...}`, each scope one of
    `known`; unset or empty gives {} (the built-in limits apply)."""
    raw = env_str(name).strip()
    if not raw:
        return {}
    example = '{"send:ip": [600, 60]}'
    try:
        value = json.loads(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected JSON like {example}, got {raw!r}") from None
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{name}: expected a JSON object like {example}")
    scopes = sorted(known)
    limits: dict[str, tuple[int, int]] = {}
    for scope, pair in value.items():
        if scope not in scopes:
            raise ImproperlyConfigured(
                f"{name}: unknown scope {scope!r}; known: {', '.join(scopes)}"
            )
        # bool is an int in Python: `[true, 60]` must not pass as one request a minute.
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(type(n) is int and n >= 1 for n in pair)
        ):
            raise ImproperlyConfigured(
                f"{name}: {scope!r} must be [count, window seconds], two whole numbers "
                f"of at least 1, got {json.dumps(pair)}"
            )
        limits[scope] = (pair[0], pair[1])
    return limits


def env_url(
    name: str,
    default: str = "",
    schemes: tuple[str, ...] = ("http", "https"),
    *,
    secret: bool = False,
) -> str:
    raw = env_str(name, default, secret=secret).strip()
    if not raw:
        return raw
    parts = urlsplit(raw)
    if parts.scheme not in schemes or not parts.hostname:
        raise ImproperlyConfigured(
            f"{name}: expected a URL starting with {' or '.join(s + '://' for s in schemes)} "
            f"and naming a host, got {raw!r}"
        )
    return raw.rstrip("/")


# --- Core -------------------------------------------------------------------------------------

TESTING = env_bool("PARLEY_TESTING", "pytest" in sys.modules)
DEBUG = env_bool("DEBUG", False)
VAR_DIR = Path(env_str("PARLEY_VAR_DIR", str(BASE_DIR / "var")))

# The public address of this platform, as visitors' browsers reach it. It is written into the
# embed snippet, emails and the widget's token audience; https turns on secure cookies.
SITE_URL = env_url("SITE_URL", "http://127.0.0.1:8000")
_site = urlsplit(SITE_URL)
SITE_IS_HTTPS = _site.scheme == "https"


def _secret_key() -> str:
    key = env_str("SECRET_KEY", secret=True)
    if key:
        if len(key) < 32:
            raise ImproperlyConfigured("SECRET_KEY: must be at least 32 characters long")
        return key
    if SITE_IS_HTTPS and not DEBUG and not TESTING:
        raise ImproperlyConfigured(
            "SECRET_KEY: must be set in production (SITE_URL is https); "
            'generate one with: python -c "import secrets; print(secrets.token_urlsafe(50))"'
        )
    # Development: generate once, keep it in an untracked file so sessions survive restarts.
    key_file = VAR_DIR / "secret_key"
    try:
        return key_file.read_text().strip()
    except FileNotFoundError:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(50)
        key_file.write_text(key)
        key_file.chmod(0o600)
        return key


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [_site.hostname or "127.0.0.1", "127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [SITE_URL])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    # Serves the API reference's Swagger UI from our static files instead of a CDN.
    "ninja",
    "chatbot.core",
    "chatbot.tenants",
    "chatbot.bots",
    "chatbot.llm",
    "chatbot.conversations",
    "chatbot.knowledge",
    "chatbot.installs",
    "chatbot.profiles",
    "chatbot.tools",
    "chatbot.dashboard",
    "chatbot.api",
    "chatbot.webhooks",
    "chatbot.billing",
    "chatbot.analytics",
    "widget",
]

MIDDLEWARE = [
    "chatbot.core.middleware.RequestIdMiddleware",
    # NUL, invalid Unicode and out-of-range ids in any path, query, form or JSON body: 400
    # naming the field, before any view (chatbot/core/hygiene.py).
    "chatbot.core.hygiene.HygieneMiddleware",
    # JSON errors, per-key rate limits, Idempotency-Key and ETags under /api/.
    "chatbot.api.middleware.ApiMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The dashboard's language: the browser's (Accept-Language), unless the member chose one
    # on their profile (chatbot.profiles.middleware, after authentication).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "chatbot.profiles.middleware.ProfileLanguageMiddleware",
    "chatbot.tenants.middleware.TenantMiddleware",
]

ROOT_URLCONF = "chatbot.urls"
ASGI_APPLICATION = "chatbot.asgi.application"
WSGI_APPLICATION = None

TEMPLATES: list[dict[str, Any]] = [
    {
        # The project's own pages: Jinja2, from templates/ and each app's jinja2/ folder.
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"environment": "chatbot.jinja2.environment"},
    },
    {
        # Django admin and allauth ship Django templates; ours override them in
        # templates/django/.
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates" / "django"],
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

# --- Database ---------------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", secret=True)
# Connections per process in the PostgreSQL pool: the database threads (5 by default, plus
# one per HTTP request in flight) borrow from it; beyond it a caller waits up to 10 s.
DB_POOL_SIZE = env_int("DB_POOL_SIZE", 20, minimum=2)


def _database() -> dict[str, Any]:
    if not DATABASE_URL:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "parley.sqlite3",
            "OPTIONS": {
                # WAL lets readers and one writer work at once; IMMEDIATE takes the write lock
                # at BEGIN so concurrent writers wait (busy timeout) instead of failing.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # Keep each thread's connection (sockets and replies share one database thread
            # on SQLite: chatbot/lib/db.py) instead of opening one per call.
            "CONN_MAX_AGE": None,
            "TEST": {"NAME": str(VAR_DIR / "test-parley.sqlite3")},
        }
    import dj_database_url

    parts = urlsplit(DATABASE_URL)
    if parts.scheme not in ("postgres", "postgresql", "pgsql", "sqlite"):
        raise ImproperlyConfigured(
            "DATABASE_URL: expected postgres://user:password@host:5432/name "
            f"(or sqlite:///path), got scheme {parts.scheme or '(none)'!r}"
        )
    try:
        config: dict[str, Any] = dict(dj_database_url.parse(DATABASE_URL, conn_max_age=0))
    except (ValueError, KeyError) as exc:
        raise ImproperlyConfigured(f"DATABASE_URL: cannot parse it: {exc}") from None
    if config["ENGINE"].endswith("postgresql"):
        if not config.get("NAME"):
            raise ImproperlyConfigured("DATABASE_URL: names no database (add /name at the end)")
        # Django's connection pool (psycopg_pool): database calls of sockets and replies run
        # on a thread pool (chatbot/lib/db.py), each borrowing a connection for the call.
        # CONN_MAX_AGE stays 0: returning the connection to the pool is the "close".
        config.setdefault("OPTIONS", {})["pool"] = {
            "min_size": 2,
            "max_size": DB_POOL_SIZE,
            "timeout": 10,
        }
    else:
        config["CONN_MAX_AGE"] = None
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DB_IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")

# --- Redis: channel layer, cache, Celery, rate limits -----------------------------------------

REDIS_URL = env_url("REDIS_URL", "", schemes=("redis", "rediss", "unix"), secret=True)

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 reads with a 5 s socket timeout by default, the same as
                # channels_redis's blocking BZPOPMIN: every idle socket's receive would fail
                # after ~5 s and drop the WebSocket. Read longer than the pop blocks.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
                "prefix": "parley",
                "capacity": 1000,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "parley",
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
# Without a broker, tasks run in the calling process: one command runs everything.
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task taken by a worker that then died (acks_late) goes back to the queue after this many
# seconds; kombu's Redis transport waits an hour by default. Keep it above any task's
# countdown or ETA, or that task runs twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 300, minimum=5),
    "unacked_restore_throttle": 1,  # look for such tasks every few seconds, not every 100 s
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
# Without a broker no `celery beat` runs, so `manage.py serve` runs CELERY_BEAT_SCHEDULE
# itself (chatbot/core/periodic.py). Off under tests, which start it when they mean to.
PERIODIC_TASKS_IN_PROCESS = CELERY_TASK_ALWAYS_EAGER and env_bool(
    "PERIODIC_TASKS_IN_PROCESS", not TESTING
)

# --- Accounts ---------------------------------------------------------------------------------

AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/dashboard/"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env_str("ACCOUNT_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
# Every flow that sends an email is limited per address (the victim of a flood) and per
# client; allauth counts in the cache (Redis when configured: shared by every process).
# allauth's defaults allow 20 sign-ups a minute per address and 5 reset emails a minute to one
# mailbox; "invite" and "invite_address" are Parley's (dashboard team page).
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "5/m/ip,20/h/ip",
    "reset_password": "5/m/ip,20/h/ip,3/h/key",
    "invite": "10/m/user,50/h/user,100/d/key",  # key: the workspace
    "invite_address": "3/h/key",  # key: the invited address
}
ACCOUNT_DEFAULT_HTTP_PROTOCOL = _site.scheme
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
# Sign-up asks for the workspace name and makes the new user its owner (chatbot/tenants).
ACCOUNT_FORMS = {"signup": "chatbot.tenants.forms.SignupForm"}
ACCOUNT_ADAPTER = "chatbot.tenants.adapter.AccountAdapter"
# Opening the verification link (in the browser that signed up) logs in: straight to the
# dashboard's first steps.
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Parley] "

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = SITE_IS_HTTPS
CSRF_COOKIE_SECURE = SITE_IS_HTTPS
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
X_FRAME_OPTIONS = "DENY"
if SITE_IS_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    # Preloading is a commitment for every subdomain, so it is opt-in, not a deploy error.
    SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# --- Email ------------------------------------------------------------------------------------

EMAIL_URL = env_url("EMAIL_URL", "", schemes=("smtp", "smtps"), secret=True)
# Webhooks: how long one delivery attempt may take, and whether plain-http endpoints are
# accepted (off in production; for a receiver on a private test network).
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
WEBHOOKS_ALLOW_HTTP = env_bool("WEBHOOKS_ALLOW_HTTP", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Parley <no-reply@parley.localhost>")
# Where a tenant asks for a larger plan (the usage meters link to it at 80% and 100%).
PLAN_CONTACT_URL = env_str("PLAN_CONTACT_URL", "")
if PLAN_CONTACT_URL and not PLAN_CONTACT_URL.startswith(("https://", "http://", "mailto:")):
    raise ImproperlyConfigured("PLAN_CONTACT_URL must be an http(s):// or mailto: address.")
if EMAIL_URL:
    _email = urlsplit(EMAIL_URL)
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": _email.hostname or "",
                "port": _email.port or (465 if _email.scheme == "smtps" else 587),
                "username": _email.username or "",
                "password": _email.password or "",
                "use_ssl": _email.scheme == "smtps",
                "use_tls": _email.scheme == "smtp" and env_bool("EMAIL_USE_TLS", True),
                "timeout": 10,
            },
        }
    }
else:
    # Printed decoded (links whole), not as the raw quoted-printable message.
    MAILERS = {"default": {"BACKEND": "chatbot.core.emails.ConsoleBackend"}}
EMAIL_CONFIGURED = bool(EMAIL_URL)

# --- Static files, uploads --------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Hashed names (long cache) with gzip and brotli copies made at collectstatic.
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not (DEBUG or TESTING)
        else "django.contrib.staticfiles.storage.StaticFilesStorage",
    },
}
WHITENOISE_MAX_AGE = 60
# Without collectstatic (tests, DEBUG) serve straight from the app and project static dirs.
WHITENOISE_USE_FINDERS = DEBUG or TESTING
DATA_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024

# --- Parley -----------------------------------------------------------------------------------

# Model endpoints declared by the operator: a JSON file path or inline JSON (see README).
LLM_ENDPOINTS_FILE = env_str("LLM_ENDPOINTS_FILE")
LLM_ENDPOINTS_JSON = env_str("LLM_ENDPOINTS")
LLM_AUTODETECT = env_bool("LLM_AUTODETECT", not TESTING)
# Fair sharing of each endpoint's streams between tenants, per process
# (chatbot/llm/fairshare.py): a tenant's share, lent beyond while no other tenant waits; the
# streams per endpoint and process are its max_concurrency, at most MODEL_CALLS_PER_PROCESS.
MODEL_CALLS_PER_TENANT = env_int("MODEL_CALLS_PER_TENANT", 4, minimum=1)
MODEL_CALLS_PER_PROCESS = env_int("MODEL_CALLS_PER_PROCESS", 256, minimum=1)
MODEL_QUEUE_PER_TENANT = env_int("MODEL_QUEUE_PER_TENANT", 200, minimum=0)
MODEL_QUEUE_TIMEOUT = env_int("MODEL_QUEUE_TIMEOUT", 60, minimum=1)
# Heavy CPU work of uploads (image re-encoding) runs in this many threads at most, off the
# event loop and off the thread that serves database calls.
HEAVY_WORK_THREADS = env_int("HEAVY_WORK_THREADS", 2, minimum=1)
# Which embedder gives knowledge its vectors: auto | endpoint | builtin | off (docs/knowledge.md).
# Tests use only the endpoints they declare, unless a test asks for the built-in model.
KNOWLEDGE_EMBEDDER = (
    env_str("KNOWLEDGE_EMBEDDER", "endpoint" if TESTING else "auto").strip().lower()
)
if KNOWLEDGE_EMBEDDER not in ("auto", "endpoint", "builtin", "off"):
    raise ImproperlyConfigured(
        f"KNOWLEDGE_EMBEDDER: expected auto, endpoint, builtin or off, got {KNOWLEDGE_EMBEDDER!r}"
    )
# OpenMP threads of the built-in embedder per process (workers already run side by side).
KNOWLEDGE_EMBEDDER_THREADS = env_int("KNOWLEDGE_EMBEDDER_THREADS", 1, minimum=1)
# The cosine from which an endpoint's vector says a passage answers (each model has its own
# scale; unset: 0.4, or the built-in model's own when it makes the vectors).
_min_similarity = env_str("KNOWLEDGE_MIN_SIMILARITY").strip()
try:
    KNOWLEDGE_MIN_SIMILARITY = float(_min_similarity) if _min_similarity else None
except ValueError:
    raise ImproperlyConfigured(
        f"KNOWLEDGE_MIN_SIMILARITY: expected a number, got {_min_similarity!r}"
    ) from None
# One knowledge page (headers and body) may take this many seconds to arrive; a site that
# drips its bytes more slowly fails the sync with a message saying so.
KNOWLEDGE_FETCH_DEADLINE = env_int("KNOWLEDGE_FETCH_DEADLINE", 30, minimum=1)
# Outbound HTTP refuses private and loopback addresses; the operator may allow named ranges.
OUTBOUND_ALLOW_CIDRS = env_networks("OUTBOUND_ALLOW_CIDRS")
# The proxies (load balancer, nginx) whose X-Forwarded-For and X-Forwarded-Proto are believed.
# A request from one of them gets as its client the nearest address in X-Forwarded-For that
# is not itself a trusted proxy; from any other peer the headers are ignored. That address is
# the one rate limits count and request logs show (uvicorn's forwarded_allow_ips, set by
# `manage.py serve`).
TRUSTED_PROXIES = env_networks("TRUSTED_PROXIES", ["127.0.0.1", "::1"])
FIELD_ENCRYPTION_KEY = env_str("FIELD_ENCRYPTION_KEY", secret=True)


def _metrics_token() -> str:
    token = env_str("METRICS_TOKEN", secret=True).strip()
    if token and len(token) < 16:
        raise ImproperlyConfigured(
            "METRICS_TOKEN: must be at least 16 characters long; generate one with: "
            'python -c "import secrets; print(secrets.token_urlsafe(32))"'
        )
    return token


# /metrics (Prometheus): scrapers send `Authorization: Bearer <METRICS_TOKEN>`. Without a
# token it answers only requests made straight to this process from loopback (no proxy
# header); everyone else gets a 404.
METRICS_TOKEN = _metrics_token()
# Set for `serve --workers N` (one port, several processes): counters and histograms go to
# files in this directory and a scrape sums the workers. prometheus_client reads the variable
# itself when imported, so it is read plainly here (no _FILE form); empty the directory
# before each start.
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if PROMETHEUS_MULTIPROC_DIR and not Path(PROMETHEUS_MULTIPROC_DIR).is_dir():
    raise ImproperlyConfigured(
        f"PROMETHEUS_MULTIPROC_DIR: {PROMETHEUS_MULTIPROC_DIR!r} is not a directory "
        "(create it, empty, before starting the workers)"
    )
# The widget's rate limits (docs/widget-protocol.md, section 8): name → (count, window
# seconds). WIDGET_RATE_LIMITS (JSON, per scope) overrides them; a load test from one address
# needs them raised.
WIDGET_RATE_LIMIT_DEFAULTS: dict[str, tuple[int, int]] = {
    "send:visitor": (20, 60),
    "send:ip": (60, 60),
    "send:bot": (600, 60),
    "session:ip": (30, 60),
    "connect:ip": (60, 60),
    "upload:visitor": (10, 60),
    "typing:visitor": (30, 60),
    # The REST API, per key (docs/api.md).
    "api:key": (600, 60),
}
WIDGET_RATE_LIMITS = env_rate_limits("WIDGET_RATE_LIMITS", WIDGET_RATE_LIMIT_DEFAULTS)
if TESTING:
    # The personas are created and log in hundreds of times: a fast hash keeps tests quick.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Periodic jobs: run by Celery beat (`celery -A chatbot beat`) with REDIS_URL, inside
# `manage.py serve` without it (PERIODIC_TASKS_IN_PROCESS). Apps add their own entries.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Knowledge sources with a re-sync schedule (daily/weekly) are queued when due.
    "knowledge-resync-due": {
        "task": "chatbot.knowledge.tasks.resync_due_sources",
        "schedule": 15 * 60,
    },
    # Each workspace's retention window; replies left streaming by a dead process.
    "purge-expired-conversations": {
        "task": "chatbot.conversations.tasks.purge_expired_conversations",
        "schedule": 60 * 60,
    },
    # Webhook deliveries whose retry time has come (chatbot/webhooks/dispatch.py).
    "webhooks-send-due": {
        "task": "chatbot.webhooks.tasks.send_due_deliveries",
        "schedule": 30,
    },
    "sweep-stale-replies": {
        "task": "chatbot.conversations.tasks.sweep_stale_replies",
        "schedule": 5 * 60,
    },
    # Usage: counters restored from the messages after a Redis loss, 80%/100% emails.
    "billing-check-usage": {
        "task": "chatbot.billing.tasks.check_usage",
        "schedule": 5 * 60,
    },
    # Daily roll-ups for the analytics pages: today and yesterday, rebuilt (idempotent).
    "analytics-roll-up": {
        "task": "chatbot.analytics.tasks.roll_up_recent",
        "schedule": 30 * 60,
    },
}

LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", "English"),
    ("fr", "Français"),
    ("es", "Español"),
    ("de", "Deutsch"),
    ("ar", "العربية"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Logging: one line per event, with the request id ---------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        f"LOG_LEVEL: expected DEBUG, INFO, WARNING or ERROR, got {LOG_LEVEL!r}"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "chatbot.core.logging.RequestIdFilter"}},
    "formatters": {"line": {"()": "chatbot.core.logging.LineFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "line",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "uvicorn.access": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
