"""Egret settings: one module, driven by environment variables (see README, "Configuration")."""

from __future__ import annotations

import ipaddress
import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from core.logging import log_format

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("EGRET_VAR_DIR", BASE_DIR / "var"))

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}.")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}.") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


# Email transports EMAIL_URL may name: scheme -> (TLS mode, default port).
_EMAIL_SCHEMES = {"smtp": (None, 25), "smtp+tls": ("tls", 587), "smtp+ssl": ("ssl", 465),
                  "smtps": ("ssl", 465)}


def email_settings(url: str) -> dict:
    """EMAIL_URL -> Django's EMAIL_* settings: empty (or `console:`) prints mail to stdout;
    `smtp://`, `smtp+tls://` (STARTTLS) and `smtp+ssl://`/`smtps://` (implicit TLS) send it,
    e.g. `smtp+tls://user:pass@smtp.example.com:587`."""
    if not url.strip() or url.strip() == "console:":
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    parts = urlsplit(url.strip())
    if parts.scheme not in _EMAIL_SCHEMES or not parts.hostname:
        raise ImproperlyConfigured(
            f"EMAIL_URL must look like smtp[+tls|+ssl]://[user:pass@]host[:port], got scheme "
            f"{parts.scheme!r}.")
    tls, default_port = _EMAIL_SCHEMES[parts.scheme]
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": parts.hostname, "EMAIL_PORT": parts.port or default_port,
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": tls == "tls", "EMAIL_USE_SSL": tls == "ssl",
    }


def _embedded_secret_key() -> str:
    """A key generated once and kept under var/, so sessions survive restarts of the demo."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off. Set SECRET_KEY, or DEBUG=1 for local use."
        )
    SECRET_KEY = _embedded_secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    # Swagger UI and ReDoc assets, served by whitenoise: /docs/ needs no CDN.
    "drf_spectacular_sidecar",
    "corsheaders",
    # Brute-force protection of the admin and API logins (core/lockout.py).
    "axes",
    "core",
    "billing",
    "organizations",
    "django_tasks",
    "django_tasks_db",
    "knowledge",
    "assistant",
    "webhooks",
]

MIDDLEWARE = [
    "core.middleware.RequestIDMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as axes requires: turns a locked-out admin login into core.lockout's JSON 429.
    "axes.middleware.AxesMiddleware",
]

# axes first: it refuses a locked-out account before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "egret.urls"
WSGI_APPLICATION = "egret.wsgi.application"
AUTH_USER_MODEL = "core.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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
DATABASE_URL = os.environ.get("DATABASE_URL", "")
# PostgreSQL only: a pool of at most this many connections per process (psycopg's pool, which
# Django 5.2 drives); a request takes one for its statements and gives it back at its end, and
# a streamed answer gives it back while the model generates. 0 = no pool (a persistent
# connection per thread, CONN_MAX_AGE). gunicorn.conf.py turns it on for the server.
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 0)
if DATABASE_URL:
    _pooled = DATABASE_POOL_MAX_SIZE > 0 and DATABASE_URL.startswith(("postgres", "pgsql"))
    _db = dj_database_url.parse(
        DATABASE_URL, conn_max_age=0 if _pooled else env_int("CONN_MAX_AGE", 60),
        # With the pool: each connection is checked as it is taken, so one broken by a
        # database restart is replaced instead of failing a request.
        conn_health_checks=True,
    )
    if _pooled:
        _db.setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(env_int("DATABASE_POOL_MIN_SIZE", 2), DATABASE_POOL_MAX_SIZE),
            "max_size": DATABASE_POOL_MAX_SIZE,
            # How long a request waits for a free connection (or for the database to come
            # back) before it fails with a 500 / /health/ answers 503.
            "timeout": env_float("DATABASE_POOL_TIMEOUT", 30.0),
            # A failed connection attempt is retried with a growing delay; giving up after
            # 2 s lets the next request start a fresh attempt, so the pool is whole again
            # within seconds of the database's return whatever the outage lasted.
            "reconnect_timeout": 2.0,
        }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    _db = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(VAR_DIR / "egret.sqlite3")}
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent requests on the embedded default: WAL lets readers run beside the writer,
    # IMMEDIATE takes the write lock at BEGIN (no upgrade deadlocks), the timeout waits for it.
    _db.setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
if _db["ENGINE"] == "django.db.backends.postgresql":
    # No JIT compilation: its 10-50 ms per statement is paid when the planner's estimate is
    # large (full-text search on a big library), never won back on statements that return a
    # page of rows (docs/benchmarks.md, "Retrieval at 500,000 chunks"). Added to any
    # `?options=` of DATABASE_URL.
    _options = _db.setdefault("OPTIONS", {})
    _options["options"] = (_options.get("options", "") + " -c jit=off").strip()
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (throttle counters) ---------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "core.cache.RedisCache",  # Django's, with its clients reused
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "egret",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Passwords, i18n, static -----------------------------------------------------------------
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
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = VAR_DIR / "media"

# --- Security (behind a TLS-terminating proxy) -----------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^metrics/?$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
# The header only allows preloading; nothing is listed until the domain owner submits it.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# A CSRF failure (admin forms) answers the JSON of API.md 1, not Django's HTML page.
CSRF_FAILURE_VIEW = "core.errors.csrf_failure"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", [])
CORS_ALLOW_HEADERS = [
    "accept",
    "authorization",
    "content-type",
    "idempotency-key",
    "x-api-key",
    "x-organization",
    "x-request-id",
]
CORS_EXPOSE_HEADERS = ["x-request-id", "retry-after", "idempotent-replayed"]

# Clients must use the canonical URL (all paths end with a slash); a redirect would drop
# POST bodies, so the unknown-URL handler names the canonical path instead.
APPEND_SLASH = False

# --- REST framework and JWT ------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.authentication.ApiKeyAuthentication",
        "core.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # `?format=` belongs to endpoints (session export), not to content negotiation.
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_THROTTLE_CLASSES": ["core.throttles.PrincipalRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "principal": os.environ.get("THROTTLE_RATE_DEFAULT", "600/min"),
        "query": os.environ.get("THROTTLE_RATE_QUERY", "60/min"),
        "login": os.environ.get("THROTTLE_RATE_LOGIN", "10/min"),
        # Per email asking for a password reset (each one sends a mail); per IP, the login rate.
        "password_reset": os.environ.get("THROTTLE_RATE_PASSWORD_RESET", "3/hour"),
    },
    "EXCEPTION_HANDLER": "core.exceptions.exception_handler",
    # OpenAPI 3 (drf-spectacular) plus the errors every operation shares (core/schema.py).
    "DEFAULT_SCHEMA_CLASS": "core.schema.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    # Proxies in front of gunicorn that append to X-Forwarded-For (throttles use the client IP).
    # 0 (not None): DRF then uses REMOTE_ADDR and ignores a client-invented X-Forwarded-For.
    "NUM_PROXIES": env_int("NUM_PROXIES", 0),
}

JWT_SIGNING_KEY = os.environ.get("JWT_SIGNING_KEY") or SECRET_KEY
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_TOKEN_MINUTES", 30)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_TOKEN_DAYS", 30)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    # A deleted user's refresh token is a 401, not a 500 (core/serializers.py).
    "TOKEN_REFRESH_SERIALIZER": "core.serializers.TokenRefreshSerializer",
    # Request bodies refuse fields they do not take (core/strict.py).
    "TOKEN_VERIFY_SERIALIZER": "core.serializers.TokenVerifySerializer",
    "TOKEN_BLACKLIST_SERIALIZER": "core.serializers.TokenBlacklistSerializer",
}

# --- Email (password reset, invitations, set-password mail for operator-created owners) --------
# Console output by default; SMTP when EMAIL_URL is set (see email_settings above).
globals().update(email_settings(os.environ.get("EMAIL_URL", "")))
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Egret <no-reply@localhost>")
# Where people open the links in those emails (the web app): <url>/reset?uid=&token= and
# <url>/invitations/accept?token=.
EGRET_PUBLIC_APP_URL = os.environ.get("EGRET_PUBLIC_APP_URL",
                                      "http://localhost:8000").strip().rstrip("/")
# Seconds a password-reset (and set-password) link stays valid; Django's default is 3 days.
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 3 * 24 * 3600)
EGRET_INVITATION_DAYS = 7

# --- Login lockout (django-axes; core/lockout.py) ----------------------------------------------
# Per account: EGRET_LOGIN_FAILURE_LIMIT failed logins (admin and API together) within the
# cool-off time lock the account for EGRET_LOGIN_LOCKOUT_MINUTES, even with the right
# password. Counted in the database (every app server sees the same count).
AXES_FAILURE_LIMIT = env_int("EGRET_LOGIN_FAILURE_LIMIT", 20)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("EGRET_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username"]
# axes.W006 asks for "ip_address" among the lockout parameters, so that rotating user agents
# cannot spread failures over records; per account, axes sums the failures of every record
# of the account (any address, any user agent), and the per-IP login throttle limits each
# address. Locking addresses would lock whole offices behind one NAT.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_USERNAME_CALLABLE = "core.lockout.attempted_email"
# The client address as the throttles see it (NUM_PROXIES), recorded with each attempt.
AXES_CLIENT_IP_CALLABLE = "core.lockout.client_ip"
AXES_LOCKOUT_CALLABLE = "core.lockout.lockout_response"
# Attempts during a lockout do not extend it: it ends after the configured time.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "password", "key", "api_key", "token",
                             "secret"]

# --- OpenAPI: /v1/schema/ and the interactive reference at /docs/ (drf-spectacular) -----------
# The public base URL of the API (e.g. https://api.example.com), listed as the server in the
# schema; when unset the document names none, so clients use the host that served it.
EGRET_PUBLIC_URL = os.environ.get("EGRET_PUBLIC_URL", "").strip().rstrip("/")
SPECTACULAR_SETTINGS = {
    "TITLE": "Egret API",
    "DESCRIPTION": (
        "Compliance questions answered from curated regulatory libraries and each "
        "organization's private documents, with cited sources, metered in credits.\n\n"
        "**Authentication.** People log in with `POST /auth/jwt/create/` and send "
        "`Authorization: Bearer <access token>`; they act in the organization named by the "
        "`X-Organization` header, else in the first one they joined. Servers and scripts use "
        "API keys (`egret_...`) as `Authorization: Bearer egret_...` or `X-API-Key: egret_...`; "
        "a key acts in its own organization.\n\n"
        "**Errors.** Every error is a JSON object with a human-readable `detail` string "
        "(sometimes with `code`, `field`, `request_id`). Every response carries an "
        "`X-Request-ID` header; a client's own sane value is echoed.\n\n"
        "**Limits.** 60 queries and 600 other requests per minute per key or user (429 with "
        "`Retry-After`); credits are the real quota (402 when they run out)."
    ),
    "VERSION": "1.0.0",
    "SERVERS": [{"url": EGRET_PUBLIC_URL}] if EGRET_PUBLIC_URL else [],
    # The schema and the reference are public: the contract is no secret, and Swagger UI has
    # to load the schema before anyone can authorize in it.
    "SERVE_PUBLIC": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Separate request and response components: read-only fields stay out of request bodies.
    "COMPONENT_SPLIT_REQUEST": True,
    # Then: nullable references inlined (strict 3.0 validators), defaults of what clients send
    # said in descriptions (generators would type those fields as always sent).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "core.schema.postprocess_for_generators"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # validatorUrl off: Swagger UI would otherwise send the schema to validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # One name per choice set where several fields share it (or share a field name).
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "organizations.models.Role",
        "ActingRoleEnum": ["owner", "admin", "member", "api_key"],
        "ModelTierEnum": "billing.models.Plan.ModelTier",
        "PrincipalTypeEnum": ["user", "api_key"],
        "QueryModeEnum": ["compliance", "advisory", "auto"],
        "AnsweredModeEnum": ["compliance", "advisory"],
        "WebhookEventTypeEnum": "webhooks.models.EventType",
        # The `type` of stream events, shared by /v1/query/ and /v1/compare/ events.
        "SourcesEventTypeEnum": ["sources"],
        "TextDeltaEventTypeEnum": ["text_delta"],
        "DoneEventTypeEnum": ["done"],
    },
    "TAGS": [
        {"name": "Auth", "description": "Log in with JWTs, refresh, verify, log out; sign up; "
                                        "who am I; password reset; accept an invitation."},
        {"name": "Organizations", "description": "Organizations, their members and "
                                                 "invitations."},
        {"name": "API keys", "description": "Keys for servers and scripts (owners and admins, "
                                            "with a JWT)."},
        {"name": "Billing", "description": "Plans, subscription, usage and the credit ledger."},
        {"name": "Catalogue", "description": "Domains and categories of the regulatory "
                                             "library (public)."},
        {"name": "Query", "description": "Ask a question; the models that can answer it."},
        {"name": "Sessions", "description": "Conversations and their messages."},
        {"name": "Compare", "description": "One question answered for several categories of a "
                                           "domain side by side; stored comparisons."},
        {"name": "Documents", "description": "The organization's private knowledge base."},
        {"name": "Webhooks", "description": "Signed event deliveries (credit alerts, document "
                                            "results, expiring keys) and the events list."},
        {"name": "Health", "description": "Liveness and database probe."},
        {"name": "Schema", "description": "This OpenAPI document."},
    ],
}

# --- Egret -----------------------------------------------------------------------------------
EGRET_ALLOW_SIGNUP = env_bool("EGRET_ALLOW_SIGNUP", True)
# How often (seconds) an API key's last_used_at may be written.
EGRET_API_KEY_TOUCH_SECONDS = env_int("EGRET_API_KEY_TOUCH_SECONDS", 60)

# /metrics (core/metrics.py): with a token set, scrapes need `Authorization: Bearer <token>`;
# without one, only direct (unproxied) requests from these addresses or networks are served.
EGRET_METRICS_TOKEN = os.environ.get("EGRET_METRICS_TOKEN", "")
EGRET_METRICS_ALLOW_IPS = env_list("EGRET_METRICS_ALLOW_IPS", ["127.0.0.1", "::1"])
for _entry in EGRET_METRICS_ALLOW_IPS:
    try:
        ipaddress.ip_network(_entry, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"EGRET_METRICS_ALLOW_IPS: {_entry!r} is not an IP address or network.") from None

# Background work (ingestion) through Django's Tasks API: "immediate" runs a task in the
# process that enqueued it (embedded default, tests); "database" stores it for
# `manage.py db_worker` processes on any number of hosts.
_TASK_BACKENDS = {"immediate": "django_tasks.backends.immediate.ImmediateBackend",
                  "database": "django_tasks_db.DatabaseBackend"}
EGRET_TASKS_BACKEND = os.environ.get("EGRET_TASKS_BACKEND", "immediate").strip().lower()
if EGRET_TASKS_BACKEND not in _TASK_BACKENDS:
    raise ImproperlyConfigured(f"EGRET_TASKS_BACKEND must be one of {sorted(_TASK_BACKENDS)}.")
TASKS = {"default": {"BACKEND": _TASK_BACKENDS[EGRET_TASKS_BACKEND]}}

# Webhooks (API.md 13): deliveries go to public HTTPS addresses only; these lift that for
# development and tests. The timeout is the contract's 10 seconds (tests shorten it).
EGRET_WEBHOOKS_ALLOW_PRIVATE = env_bool("EGRET_WEBHOOKS_ALLOW_PRIVATE", False)
EGRET_WEBHOOKS_ALLOW_HTTP = env_bool("EGRET_WEBHOOKS_ALLOW_HTTP", False)
EGRET_WEBHOOKS_TIMEOUT = 10.0
# Parallel connections of one sender (a hanging receiver holds one of them, not the rest).
EGRET_WEBHOOKS_CONCURRENCY = env_int("EGRET_WEBHOOKS_CONCURRENCY", 8)

# Largest document upload accepted (API.md 9); bigger requests get 413 before being read.
EGRET_MAX_UPLOAD_BYTES = env_int("EGRET_MAX_UPLOAD_BYTES", 25 * 1024 * 1024)

# PostgreSQL text-search configuration of the stored tsvectors (stemming, stop words).
EGRET_SEARCH_CONFIG = os.environ.get("EGRET_SEARCH_CONFIG", "english")

# Optional semantic search (knowledge/embeddings.py): "" off, "local" (requirements-semantic.txt)
# or "openai" (any OpenAI-compatible /v1/embeddings endpoint).
EGRET_EMBEDDINGS = os.environ.get("EGRET_EMBEDDINGS", "minilm").strip().lower()
# search()'s default method: "" picks "hybrid" for the local/openai backends and "lexical"
# (reranked by meaning when embeddings are on) otherwise; "lexical", "semantic" or "hybrid"
# force one.
EGRET_SEARCH_METHOD = os.environ.get("EGRET_SEARCH_METHOD", "").strip().lower()
if EGRET_SEARCH_METHOD not in ("", "lexical", "semantic", "hybrid"):
    raise ImproperlyConfigured("EGRET_SEARCH_METHOD must be lexical, semantic or hybrid.")
# Passages this close in meaning to the question (cosine, minilm) count as addressing it even
# when they share few of its words (assistant/grounding.py).
EGRET_MIN_SIMILARITY = env_float("EGRET_MIN_SIMILARITY", 0.46)
# ... and two passages of one document this close, together (a question in other words
# than its document's that several of its sections address).
EGRET_MIN_DOCUMENT_SIMILARITY = env_float("EGRET_MIN_DOCUMENT_SIMILARITY", 0.36)
# ... or one sentence of a passage this close to the question or to one of its parts, when
# nothing else covers it (a sentence answers a part in other words: "write it up" for "an
# after-action report").
EGRET_MIN_SENTENCE_SIMILARITY = env_float("EGRET_MIN_SENTENCE_SIMILARITY", 0.48)
EGRET_EMBEDDINGS_MODEL = os.environ.get("EGRET_EMBEDDINGS_MODEL", "")
EGRET_EMBEDDINGS_URL = os.environ.get("EGRET_EMBEDDINGS_URL", "https://api.openai.com/v1")
EGRET_EMBEDDINGS_API_KEY = os.environ.get("EGRET_EMBEDDINGS_API_KEY", "")
EGRET_EMBEDDINGS_TIMEOUT = env_int("EGRET_EMBEDDINGS_TIMEOUT", 30)
# Width of the pgvector column (knowledge/vectors.py) when PostgreSQL has the `vector` extension:
# 384 is all-MiniLM-L6-v2. `manage.py reindex` retypes the column when the model's width differs.
EGRET_EMBEDDINGS_DIMENSIONS = env_int("EGRET_EMBEDDINGS_DIMENSIONS", 384)

# --- Generation (assistant/) -------------------------------------------------------------------
# Answers with no passage covering at least this share of the question's terms are
# `insufficient_context` (no charge). See assistant/grounding.py.
EGRET_MIN_COVERAGE = env_float("EGRET_MIN_COVERAGE", 0.34)
# ... or at least this many of them (long, several-part questions).
EGRET_MIN_MATCHED_TERMS = env_int("EGRET_MIN_MATCHED_TERMS", 3)
# Each retrieved passage is widened to its section, up to this many words, before it is
# quoted or sent to a model (knowledge.retrieval.widen).
EGRET_SOURCE_WORDS = env_int("EGRET_SOURCE_WORDS", 450)
# Pseudo-relevance feedback (knowledge.retrieval.passages_for): up to this many words that the
# best lexical hits share and the question does not use are searched with it once more, and
# the two pools fused. 0 (the default) turns it off; 6 is the measured setting
# (docs/benchmarks.md: more facts in the context on PostgreSQL, mixed on SQLite, one more
# search per question).
EGRET_FEEDBACK_TERMS = env_int("EGRET_FEEDBACK_TERMS", 0)
# Upstream LLM calls: seconds per request and retries on connection errors, 429 and 5xx.
EGRET_PROVIDER_TIMEOUT = env_float("EGRET_PROVIDER_TIMEOUT", 60.0)
EGRET_PROVIDER_MAX_RETRIES = env_int("EGRET_PROVIDER_MAX_RETRIES", 2)
# A streamed answer sends its text at most every this many milliseconds (the first delta at
# once; what arrives sooner is joined to the next line). 0 = a line per model delta.
EGRET_STREAM_COALESCE_SECONDS = env_int("EGRET_STREAM_COALESCE_MS", 50) / 1000
# Anthropic API (provider "anthropic"); Bedrock models use the AWS credential chain and region.
ANTHROPIC_API_KEY = os.environ.get("ANTHROPIC_API_KEY", "")
ANTHROPIC_BASE_URL = os.environ.get("ANTHROPIC_BASE_URL", "") or None
AWS_REGION = os.environ.get("AWS_REGION", "") or os.environ.get("AWS_DEFAULT_REGION", "") or None
# OpenAI or any OpenAI-compatible server (vLLM, Ollama, llama.cpp) (provider "openai").
OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "")
OPENAI_BASE_URL = os.environ.get("OPENAI_BASE_URL", "") or None

# --- Logging: every line carries the request id -----------------------------------------------
# "json": one object per line (time, level, logger, message, request_id, then the record's
# extra fields); "plain": readable text. JSON unless DEBUG is on.
try:
    LOG_FORMAT = log_format(os.environ.get("LOG_FORMAT"), DEBUG)
except ValueError as error:
    raise ImproperlyConfigured(str(error)) from None
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.logging.RequestIDFilter"}},
    "formatters": {
        "plain": {"()": "core.logging.PlainFormatter"},
        "json": {"()": "core.logging.JSONFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": LOG_FORMAT,
            "level": LOG_LEVEL,
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # 4xx are the clients' business: only server errors are logged here (with request id).
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
