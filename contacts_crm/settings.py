"""Settings, all from the environment (design §1).

DATABASE_URL   default sqlite:///db.sqlite3 (WAL, busy timeout, immediate transactions)
REDIS_URL      unset: jobs run in-process (a background thread), cache in the database, API keys
               and throttle state in process memory
SECRET_KEY     required unless DEBUG=1
DEBUG          0/1, default 0
ALLOWED_HOSTS  comma list, default localhost,127.0.0.1 (plus testserver under DEBUG)
MEDIA_ROOT     uploaded files, default ./media
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (set DEBUG=1 for development).")
    SECRET_KEY = "django-insecure-dev-only-key-never-use-in-production-0123456789"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1" + (",testserver" if DEBUG else ""))
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_rq",
    "contacts_crm",
    "contacts",
    "segments",
    "imports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "contacts_crm.db.StatementTimeoutMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

if not DEBUG:
    # Static files from STATIC_ROOT (collectstatic) in the production profile, compressed and
    # cached; under runserver (DEBUG) Django's staticfiles app serves them as before.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "contacts_crm.urls"
WSGI_APPLICATION = "contacts_crm.wsgi.application"

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
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets requests read while an import writes; IMMEDIATE takes the write lock at BEGIN
        # so two writers queue on the busy timeout instead of failing with "database is locked"
        # when one of them tries to upgrade a read lock mid-transaction.
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }
DB_IS_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
# Statement timeouts in seconds, 0 = none (contacts_crm/db.py): API requests, the export endpoint
# and the admin, and every other connection (RQ jobs, commands) — the last through the
# connection's startup options, which each web request then overrides with its own. `migrate`
# lifts it for its session (contacts_crm/management/commands/migrate.py).
API_STATEMENT_TIMEOUT = float(os.environ.get("API_STATEMENT_TIMEOUT", 10))
EXPORT_STATEMENT_TIMEOUT = float(os.environ.get("EXPORT_STATEMENT_TIMEOUT", 300))
JOB_STATEMENT_TIMEOUT = float(os.environ.get("JOB_STATEMENT_TIMEOUT", 1800))
if DB_IS_POSTGRES and JOB_STATEMENT_TIMEOUT:
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = f"-c statement_timeout={int(JOB_STATEMENT_TIMEOUT * 1000)}"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and queue ------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# "api": what every API request reads, the cached API keys and the throttle's state (issue 14).
# In Redis when there is one (shared by every process: a revoked key is forgotten everywhere at
# once, and one key's requests are counted wherever they land); else in each process's memory,
# never in the database cache, whose get and set cost ~5 queries a request. Without Redis a key
# may then make up to (processes × API_THROTTLE_RATE) requests, and a key revoked in one process
# still works in the others for up to API_KEY_CACHE_SECONDS. With Redis the throttle counts a
# fixed window in one round trip (contacts_crm.api.throttling).
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL},
              "api": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                      "KEY_PREFIX": "api"}}
    RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 6 * 3600}}
else:
    # Shared by every process (gunicorn workers, commands), unlike the local-memory cache.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"},
              "api": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "api",
                      "OPTIONS": {"MAX_ENTRIES": 10_000}}}
    RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:6379/0", "DEFAULT_TIMEOUT": 6 * 3600}}
# How long an API key (and its organization) is served from the "api" cache. Revoking a key (the
# admin's action, ApiKey.revoke) or saving it or its organization forgets it at once; a change
# made around those (a raw UPDATE, a cascade delete) applies within this bound.
API_KEY_CACHE_SECONDS = int(os.environ.get("API_KEY_CACHE_SECONDS", 10))
# True in tests: jobs run synchronously in the caller. Without Redis and outside tests they run
# in a background thread of the web process (contacts_crm.jobs.enqueue).
JOBS_SYNC = env_bool("JOBS_SYNC")
JOB_TIMEOUT = int(os.environ.get("JOB_TIMEOUT", 6 * 3600))  # seconds an RQ job may run (imports, exports)

# --- Auth, i18n, static, media --------------------------------------------------------------
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
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage" if DEBUG
                    else "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
# Days a deleted contact stays in the trash before `purge_trash` deletes it for good (contacts.trash).
TRASH_RETENTION_DAYS = int(os.environ.get("TRASH_RETENTION_DAYS", 30))
IMPORT_MAX_BYTES = int(os.environ.get("IMPORT_MAX_BYTES", 512 * 1024 * 1024))
IMPORT_CHUNK_GROUPS = int(os.environ.get("IMPORT_CHUNK_GROUPS", 2000))  # contacts per write transaction
# An import's writing phase is split into up to this many partitions (each at least a chunk) that
# several RQ workers write at once (docs/imports.md); one worker writes them one after the other.
IMPORT_PARTITIONS = int(os.environ.get("IMPORT_PARTITIONS", 4))
# On PostgreSQL under an RQ worker, an import reads and normalizes its file in a second process
# while the first stages the rows (two cores at work): set 0 to read in the worker itself.
IMPORT_READ_PROCESS = os.environ.get("IMPORT_READ_PROCESS", "1") not in ("0", "false", "False", "")
# An import whose worker gave no sign of life for this long is requeued and resumes (make worker's
# scheduler checks at least this often; a worker starting checks at once).
IMPORT_STALE_SECONDS = int(os.environ.get("IMPORT_STALE_SECONDS", 120))
# Exports (docs/exports.md): an export matching more contacts than this is not streamed in the
# request but runs as a background job (202 with the job); its download link lives this long.
EXPORT_STREAM_MAX_ROWS = int(os.environ.get("EXPORT_STREAM_MAX_ROWS", 50_000))
EXPORT_LINK_HOURS = int(os.environ.get("EXPORT_LINK_HOURS", 24))
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
TEXTABILITY_PROVIDER = os.environ.get("TEXTABILITY_PROVIDER", "offline")

# --- API ------------------------------------------------------------------------------------
API_THROTTLE_RATE = os.environ.get("API_THROTTLE_RATE", "1200/min")
REST_FRAMEWORK = {
    # Bearer first: DRF takes the first class's authenticate_header() for the 401 answer, so a
    # request without credentials gets 401 + WWW-Authenticate: Bearer instead of 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "contacts_crm.api.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["contacts_crm.api.permissions.HasOrgScope"],
    "DEFAULT_THROTTLE_CLASSES": ["contacts_crm.api.throttling.ApiKeyRateThrottle"],
    "EXCEPTION_HANDLER": "contacts_crm.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "contacts_crm.api.schema.ApiAutoSchema",
    "DEFAULT_PARSER_CLASSES": [
        "contacts_crm.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": [],
    "DEFAULT_PAGINATION_CLASS": None,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "URL_FORMAT_OVERRIDE": "format",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "contacts_crm API",
    "DESCRIPTION": "Multi-tenant contact book for messaging teams. Authenticate with "
    "`Authorization: Bearer <api key>`; keys are created in the admin.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "APPEND_COMPONENTS": {
        "securitySchemes": {"ApiKeyBearer": {"type": "http", "scheme": "bearer", "description": "API key"}}
    },
    "SECURITY": [{"ApiKeyBearer": []}],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "contacts_crm.api.schema.integer_ids",
        "contacts_crm.api.schema.add_links",
    ],
}

# --- Production hardening (manage.py check --deploy is clean with DEBUG=0) -------------------
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # a load balancer's plain-HTTP health check
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", 31536000))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
