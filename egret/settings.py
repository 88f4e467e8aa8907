"""Egret settings: one module, driven by environment variables (see README, "Configuration")."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

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
    "corsheaders",
    "core",
    "billing",
    "organizations",
    "django_tasks",
    "django_tasks_db",
    "knowledge",
    "assistant",
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
if DATABASE_URL:
    _db = dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("CONN_MAX_AGE", 60), conn_health_checks=True
    )
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
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (throttle counters) ---------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
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
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
# The header only allows preloading; nothing is listed until the domain owner submits it.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
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
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # `?format=` belongs to endpoints (session export), not to content negotiation.
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_THROTTLE_CLASSES": ["core.throttles.PrincipalRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "principal": os.environ.get("THROTTLE_RATE_DEFAULT", "600/min"),
        "query": os.environ.get("THROTTLE_RATE_QUERY", "60/min"),
        "login": os.environ.get("THROTTLE_RATE_LOGIN", "10/min"),
    },
    "EXCEPTION_HANDLER": "core.exceptions.exception_handler",
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
}

# --- Egret -----------------------------------------------------------------------------------
EGRET_ALLOW_SIGNUP = env_bool("EGRET_ALLOW_SIGNUP", True)
# How often (seconds) an API key's last_used_at may be written.
EGRET_API_KEY_TOUCH_SECONDS = env_int("EGRET_API_KEY_TOUCH_SECONDS", 60)

# Background work (ingestion) through Django's Tasks API: "immediate" runs a task in the
# process that enqueued it (embedded default, tests); "database" stores it for
# `manage.py db_worker` processes on any number of hosts.
_TASK_BACKENDS = {"immediate": "django_tasks.backends.immediate.ImmediateBackend",
                  "database": "django_tasks_db.DatabaseBackend"}
EGRET_TASKS_BACKEND = os.environ.get("EGRET_TASKS_BACKEND", "immediate").strip().lower()
if EGRET_TASKS_BACKEND not in _TASK_BACKENDS:
    raise ImproperlyConfigured(f"EGRET_TASKS_BACKEND must be one of {sorted(_TASK_BACKENDS)}.")
TASKS = {"default": {"BACKEND": _TASK_BACKENDS[EGRET_TASKS_BACKEND]}}

# Largest document upload accepted (API.md 9); bigger requests get 413 before being read.
EGRET_MAX_UPLOAD_BYTES = env_int("EGRET_MAX_UPLOAD_BYTES", 25 * 1024 * 1024)

# PostgreSQL text-search configuration of the stored tsvectors (stemming, stop words).
EGRET_SEARCH_CONFIG = os.environ.get("EGRET_SEARCH_CONFIG", "english")

# Optional semantic search (knowledge/embeddings.py): "" off, "local" (requirements-semantic.txt)
# or "openai" (any OpenAI-compatible /v1/embeddings endpoint).
EGRET_EMBEDDINGS = os.environ.get("EGRET_EMBEDDINGS", "").strip().lower()
EGRET_EMBEDDINGS_MODEL = os.environ.get("EGRET_EMBEDDINGS_MODEL", "")
EGRET_EMBEDDINGS_URL = os.environ.get("EGRET_EMBEDDINGS_URL", "https://api.openai.com/v1")
EGRET_EMBEDDINGS_API_KEY = os.environ.get("EGRET_EMBEDDINGS_API_KEY", "")
EGRET_EMBEDDINGS_TIMEOUT = env_int("EGRET_EMBEDDINGS_TIMEOUT", 30)

# --- Generation (assistant/) -------------------------------------------------------------------
# Answers with no passage covering at least this share of the question's terms are
# `insufficient_context` (no charge). See assistant/grounding.py.
EGRET_MIN_COVERAGE = env_float("EGRET_MIN_COVERAGE", 0.34)
# Upstream LLM calls: seconds per request and retries on connection errors, 429 and 5xx.
EGRET_PROVIDER_TIMEOUT = env_float("EGRET_PROVIDER_TIMEOUT", 60.0)
EGRET_PROVIDER_MAX_RETRIES = env_int("EGRET_PROVIDER_MAX_RETRIES", 2)
# Anthropic API (provider "anthropic"); Bedrock models use the AWS credential chain and region.
ANTHROPIC_API_KEY = os.environ.get("ANTHROPIC_API_KEY", "")
ANTHROPIC_BASE_URL = os.environ.get("ANTHROPIC_BASE_URL", "") or None
AWS_REGION = os.environ.get("AWS_REGION", "") or os.environ.get("AWS_DEFAULT_REGION", "") or None
# OpenAI or any OpenAI-compatible server (vLLM, Ollama, llama.cpp) (provider "openai").
OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "")
OPENAI_BASE_URL = os.environ.get("OPENAI_BASE_URL", "") or None

# --- Logging: every line carries the request id -----------------------------------------------
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.logging.RequestIDFilter"}},
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s %(message)s"
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": "plain",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # 4xx are the clients' business: only server errors are logged here (with request id).
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
