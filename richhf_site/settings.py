"""Settings for RichHF Studio, read from environment variables.

Defaults are the embedded demo set-up: a SQLite file and kombu's filesystem broker under
var/, so `make demo` needs no server. DATABASE_URL and CELERY_BROKER_URL switch to
PostgreSQL and Redis (as `make test` and docker-compose.yml do).
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("RICHHF_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DJANGO_DEBUG", False)
# hardening: access (secret key). Without DEBUG the key must be real: Django's own deploy
# check rule (50+ characters, 5+ distinct ones, not a "django-insecure-" key) and none of
# the placeholders this project ever shipped. A weak key lets anyone forge sessions.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
_PLACEHOLDER_SECRET_KEYS = {"change-me-in-production", "insecure-local-development-key-change-me", "build-only"}
if not DEBUG and (
    SECRET_KEY in _PLACEHOLDER_SECRET_KEYS
    or len(SECRET_KEY) < 50
    or len(set(SECRET_KEY)) < 5
    or SECRET_KEY.startswith("django-insecure-")
):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is missing, a placeholder or too weak, and DJANGO_DEBUG is off. Set a random "
        "key of at least 50 characters, e.g. from: python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
if not SECRET_KEY:
    SECRET_KEY = "insecure-local-development-key-change-me"  # DEBUG only (make demo)
ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "annotation",
    "aggregation",
    "aggregation.exports",
    "aggregation.dashboard",
    "aggregation.learning",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "richhf_site.urls"
WSGI_APPLICATION = "richhf_site.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The demo runs web, worker and beat against one SQLite file: wait for locks instead of
    # failing at once, and take the write lock at BEGIN so two writers never deadlock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", VAR_DIR / "static"))
try:  # WhiteNoise warns on every request while the folder is missing.
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
except OSError:
    pass
MEDIA_ROOT = Path(os.environ.get("DJANGO_MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"  # never routed: images go through the permission-checked API.

# Object storage: set RICHHF_STORAGE=s3 plus the AWS_* variables of django-storages.
if os.environ.get("RICHHF_STORAGE", "filesystem") == "s3":
    _default_storage = {"BACKEND": "storages.backends.s3.S3Storage"}
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        # Production: our JS and CSS minified, then pre-compressed by WhiteNoise (staticfiles.py).
        "BACKEND": "richhf_site.staticfiles.MinifiedCompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# scale-out: storage. Web and worker machines share PostgreSQL, Redis and one bucket, never a
# local folder: RICHHF_STORAGE=s3 stores images, heatmaps, exports and checkpoints there
# (django-storages' S3 backend; any S3-compatible service: AWS, MinIO, Ceph, moto in tests).
# Credentials come from boto3's own chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the
# environment, or the machine's role), so they never sit in settings.
if os.environ.get("RICHHF_STORAGE", "filesystem") == "s3":
    AWS_STORAGE_BUCKET_NAME = os.environ.get("AWS_STORAGE_BUCKET_NAME", "")
    if not AWS_STORAGE_BUCKET_NAME:
        raise ImproperlyConfigured("RICHHF_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME")
    AWS_S3_ENDPOINT_URL = os.environ.get("AWS_S3_ENDPOINT_URL") or None  # unset: AWS itself
    AWS_S3_REGION_NAME = os.environ.get("AWS_S3_REGION_NAME") or None
    AWS_S3_ADDRESSING_STYLE = os.environ.get("AWS_S3_ADDRESSING_STYLE") or None  # "path" for MinIO
    AWS_LOCATION = os.environ.get("AWS_LOCATION", "")  # a key prefix, to share one bucket
    AWS_DEFAULT_ACL = None  # objects stay private: images are served through the permission-checked API
    AWS_QUERYSTRING_AUTH = True
    # As FileSystemStorage: save() never replaces another object under the same name (heatmaps
    # and images are content-addressed; checkpoints delete their previous attempt first).
    AWS_S3_FILE_OVERWRITE = False

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "richhf_site.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "RichHF Studio API",
    "DESCRIPTION": "Rich human feedback collection: leases, annotations, aggregates.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# hardening: API schema. Every response is documented, 4xx included (richhf_site/schema.py);
# request and response components are split so a request states what the server refuses
# (e.g. a blank string); the docs page loads Redoc from drf-spectacular-sidecar's static files,
# never from a CDN, so it works offline.
INSTALLED_APPS += ["drf_spectacular_sidecar"]
_template_dirs = TEMPLATES[0]["DIRS"]
assert isinstance(_template_dirs, list)
_template_dirs.append(BASE_DIR / "richhf_site" / "templates")  # richhf_site/redoc.html
REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "richhf_site.schema.AutoSchema"
SPECTACULAR_SETTINGS |= {
    "COMPONENT_SPLIT_REQUEST": True,
    # The API's bodies are JSON (points are JSON numbers, scores JSON integers); DRF's form
    # parsers cannot carry them, so the schema offers no form content types.
    "PARSER_WHITELIST": ["rest_framework.parsers.JSONParser"],
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# Celery. The default broker is kombu's filesystem transport: a real worker and beat with no
# server. One folder serves as both in and out (the transport requires it).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
_queue_dir = VAR_DIR / "celery" / "queue"
_processed_dir = VAR_DIR / "celery" / "processed"
_control_dir = VAR_DIR / "celery" / "control"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _d in (_queue_dir, _processed_dir, _control_dir):
        _d.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        # Exchange tables; kombu's default is a "control" folder in the working directory.
        "control_folder": str(_control_dir),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Redis re-delivers an unacknowledged (acks_late) message after this long. It must exceed
    # the longest task's hard time limit (exports: 3 h), or a running task would be started
    # twice; a crashed worker's items are re-enqueued sooner by the reconciliation beat task.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 4 * 3600}
CELERY_TASK_IGNORE_RESULT = True  # results that matter live in the project's own tables
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# One name per test run (scripts/test.sh), so two suites on one Redis never take each
# other's tasks; "default" everywhere else.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("RICHHF_DEFAULT_QUEUE", "default")
CELERY_BEAT_SCHEDULE = {
    "expire-leases": {
        "task": "annotation.expire_leases",
        "schedule": timedelta(seconds=int(os.environ.get("RICHHF_EXPIRE_EVERY_S", "60"))),
    },
    # Safety net for aggregation: complete items without a current aggregate (enqueue lost,
    # worker killed, campaign radius/size changed) are enqueued again.
    "reconcile-aggregates": {
        "task": "aggregation.reconcile",
        "schedule": timedelta(seconds=int(os.environ.get("RICHHF_RECONCILE_EVERY_S", "300"))),
    },
    # Agreement dashboard cache: every campaign's statistics recomputed from the annotations.
    "recompute-dashboard-stats": {
        "task": "dashboard.recompute_all_campaign_stats",
        "schedule": timedelta(seconds=int(os.environ.get("RICHHF_DASHBOARD_EVERY_S", "900"))),
    },
}
# Retraining runs on its own queue so annotation traffic (default queue) never waits for it.
RICHHF_TRAINING_QUEUE = os.environ.get("RICHHF_TRAINING_QUEUE", "training")  # per run in tests, like the default
CELERY_TASK_ROUTES = {
    "learning.retrain": {"queue": RICHHF_TRAINING_QUEUE},
    "learning.predict": {"queue": RICHHF_TRAINING_QUEUE},
}
CELERY_BEAT_SCHEDULE["learning-tick"] = {
    # Starts due retraining runs (schedule / new aggregates) and re-enqueues stalled ones.
    "task": "learning.tick",
    "schedule": timedelta(seconds=int(os.environ.get("RICHHF_LEARNING_TICK_S", "300"))),
}
RICHHF_LEARNING_DIR = Path(os.environ.get("RICHHF_LEARNING_DIR", VAR_DIR / "learning"))
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# hardening: faults. A broker that is down or hung must cost a request a few seconds at most:
# the answer is already committed and the reconcilers re-enqueue what a failed publish lost
# (aggregation.reconcile, exports.reconcile), so waiting longer buys nothing. Socket timeouts
# bound a hung Redis (the default waits forever); the publish retry policy bounds a refused one.
RICHHF_BROKER_SOCKET_TIMEOUT_S = float(os.environ.get("RICHHF_BROKER_SOCKET_TIMEOUT_S", "3"))
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        socket_connect_timeout=RICHHF_BROKER_SOCKET_TIMEOUT_S,
        # Above kombu's 1 s BRPOP poll, so an idle worker's blocking read never times out.
        socket_timeout=max(RICHHF_BROKER_SOCKET_TIMEOUT_S, 2.0),
    )
CELERY_BROKER_CONNECTION_TIMEOUT = RICHHF_BROKER_SOCKET_TIMEOUT_S
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
# The database unreachable: a 503 with Retry-After instead of a 500 page.
MIDDLEWARE.append("richhf_site.middleware_faults.DatabaseUnavailableMiddleware")
# How long a fresh item / queued export is left to its own message before the reconcilers
# enqueue it again (tests shorten them).
RICHHF_RECONCILE_GRACE_S = int(os.environ.get("RICHHF_RECONCILE_GRACE_S", "120"))
RICHHF_EXPORT_QUEUED_GRACE_S = int(os.environ.get("RICHHF_EXPORT_QUEUED_GRACE_S", "600"))
# Export jobs whose broker message was lost are re-enqueued (aggregation/exports/services.py).
CELERY_BEAT_SCHEDULE["reconcile-exports"] = {
    "task": "exports.reconcile",
    "schedule": timedelta(seconds=int(os.environ.get("RICHHF_EXPORT_RECONCILE_EVERY_S", "300"))),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.server": {"level": "WARNING"}},
}

# Annotation limits (validated on submit).
RICHHF_MAX_POINTS_PER_KIND = int(os.environ.get("RICHHF_MAX_POINTS_PER_KIND", "200"))
RICHHF_MAX_IMAGE_PIXELS = int(os.environ.get("RICHHF_MAX_IMAGE_PIXELS", str(64 * 1024 * 1024)))

# Webhooks (issue 12): signed POSTs to admins' endpoints, delivered by Celery with retries.
INSTALLED_APPS.append("aggregation.webhooks")
# Only public http(s) addresses may receive webhooks; tests turn this on for a local receiver.
RICHHF_WEBHOOKS_ALLOW_PRIVATE = env_bool("RICHHF_WEBHOOKS_ALLOW_PRIVATE", False)
RICHHF_WEBHOOKS_MAX_ATTEMPTS = int(os.environ.get("RICHHF_WEBHOOKS_MAX_ATTEMPTS", "8"))
RICHHF_WEBHOOKS_BACKOFF_S = int(os.environ.get("RICHHF_WEBHOOKS_BACKOFF_S", "30"))  # then 2x, 4x, ...
# A retry waits in the worker as an ETA message: keep it under the Redis visibility timeout.
RICHHF_WEBHOOKS_BACKOFF_MAX_S = int(os.environ.get("RICHHF_WEBHOOKS_BACKOFF_MAX_S", "3600"))
RICHHF_WEBHOOKS_CONNECT_TIMEOUT_S = float(os.environ.get("RICHHF_WEBHOOKS_CONNECT_TIMEOUT_S", "3"))
RICHHF_WEBHOOKS_READ_TIMEOUT_S = float(os.environ.get("RICHHF_WEBHOOKS_READ_TIMEOUT_S", "10"))
# Deliveries that finally failed in a row before the endpoint is disabled.
RICHHF_WEBHOOKS_DISABLE_AFTER = int(os.environ.get("RICHHF_WEBHOOKS_DISABLE_AFTER", "5"))
# A pending delivery this far past its due time lost its message and is enqueued again.
RICHHF_WEBHOOKS_SWEEP_GRACE_S = int(os.environ.get("RICHHF_WEBHOOKS_SWEEP_GRACE_S", "300"))
CELERY_BEAT_SCHEDULE["webhooks-enqueue-due"] = {
    "task": "webhooks.enqueue_due",
    "schedule": timedelta(seconds=int(os.environ.get("RICHHF_WEBHOOKS_SWEEP_EVERY_S", "300"))),
}

# --- hardening: access -------------------------------------------------------------------
# Login throttling (django-axes), expiring API tokens, the admin role's /admin/ access,
# secure cookies, HSTS and a Content-Security-Policy (django-csp). See richhf_site/auth.py.
# The admin site class that also lets in the admin role (richhf_site/admin.py).
INSTALLED_APPS[INSTALLED_APPS.index("django.contrib.admin")] = "richhf_site.apps.RichHFAdminConfig"
INSTALLED_APPS += ["richhf_site", "axes", "csp"]
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1, "csp.middleware.CSPMiddleware")
MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # last, as django-axes requires
AUTHENTICATION_BACKENDS = ["richhf_site.auth.LoginThrottleBackend", "richhf_site.auth.RoleModelBackend"]
# Failed password logins are counted per account and, separately, per address: after
# AXES_FAILURE_LIMIT failures either one is refused (even the right password) until the
# cool-off has passed since the last counted failure. Refused tries do not extend it.
AXES_FAILURE_LIMIT = int(os.environ.get("RICHHF_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("RICHHF_LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "richhf_site.auth.login_lockout_response"
# The address axes counts: REMOTE_ADDR (gunicorn serves directly in docker-compose.yml).
# Behind a reverse proxy set AXES_IPWARE_* (django-ipware) so the client's address is used.
# Token first: DRF takes the first class's WWW-Authenticate, so a missing, expired or
# revoked token is a 401 (with Session first it would be a 403).
REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = [
    "richhf_site.authentication.ExpiringTokenAuthentication",
    "rest_framework.authentication.SessionAuthentication",
]
# API tokens expire this many days after they are issued (0: never).
RICHHF_TOKEN_TTL = timedelta(days=float(os.environ.get("RICHHF_TOKEN_TTL_DAYS", "30")))
# Cookies only over HTTPS and HSTS, off DEBUG. The header is sent on HTTPS requests only
# (SecurityMiddleware), so plain-http test and demo servers are unaffected. Behind a TLS
# proxy set DJANGO_SECURE_PROXY_SSL_HEADER=1 (it must set X-Forwarded-Proto).
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "0" if DEBUG else str(365 * 24 * 3600)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Content-Security-Policy: scripts and styles from this site's files only, no inline code.
# Images may be data:/blob: URLs (the rater page's heatmap hints, the admin's icons).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# hardening: parsers/limits (issue 12). Everything under /api/ answers JSON errors
# (richhf_site/errors.py). Django refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE from its
# Content-Length, before reading it (413 JSON under /api/); JSON bodies are parsed strictly
# with a nesting limit (richhf_site/parsers.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("RICHHF_MAX_BODY_BYTES", str(2_621_440)))  # Django's default
RICHHF_MAX_JSON_DEPTH = int(os.environ.get("RICHHF_MAX_JSON_DEPTH", "64"))
# The API takes JSON bodies only, as its schema says (points and scores do not fit a form);
# anything else is a 415 JSON.
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = ["richhf_site.parsers.JSONParser"]
REST_FRAMEWORK["TEST_REQUEST_DEFAULT_FORMAT"] = "json"
# JSON only: with the browsable API, an error asked for with Accept: text/html came back as HTML.
REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"] = ["rest_framework.renderers.JSONRenderer"]

# --- drafts ---
# Languages of the rater's pages (issue 15): English and Simplified Chinese, picked by the
# language switch (a cookie, Django's set_language) or the browser's Accept-Language. Template
# and Python strings are in locale/<lang>/LC_MESSAGES/django.po, JavaScript strings in
# djangojs.po (served by the JavaScript catalog at /jsi18n/); docs/i18n.md says how to add one.
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# After the session (it may hold the user), before CommonMiddleware (which may redirect).
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.common.CommonMiddleware"), "django.middleware.locale.LocaleMiddleware"
)
# --- adminpages ---
# Uploads on the admins' pages (/manage/uploads/): the whole request is refused past
# RICHHF_MAX_UPLOAD_BYTES (from its Content-Length, before it is read), a zip past
# RICHHF_MAX_UNZIPPED_BYTES unpacked (a zip bomb). Files over 2.5 MB stream to a temporary file,
# never into memory. Dropping a folder of images sends one form field per file.
RICHHF_MAX_UPLOAD_BYTES = int(os.environ.get("RICHHF_MAX_UPLOAD_BYTES", str(1024 * 1024 * 1024)))
RICHHF_MAX_UNZIPPED_BYTES = int(os.environ.get("RICHHF_MAX_UNZIPPED_BYTES", str(4 * RICHHF_MAX_UPLOAD_BYTES)))
DATA_UPLOAD_MAX_NUMBER_FILES = int(os.environ.get("RICHHF_MAX_UPLOAD_FILES", "5000"))
# Invite links for new rater accounts: one use, this many hours.
RICHHF_INVITE_HOURS = int(os.environ.get("RICHHF_INVITE_HOURS", "72"))
# Export and import jobs share one status choice set: one named enum in the API schema.
# The quality API's action kinds and policy modes get one enum each (drf-spectacular otherwise
# names shared choice sets after whichever field it meets first).
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {
    "JobStatusEnum": "aggregation.exports.models.ExportJob.Status",
    "QualityActionKindEnum": "aggregation.quality.models.ActionKind",
    "QualityModeEnum": "aggregation.quality.models.Mode",
}


# --- leadpages ---
# How often an open dashboard asks whether its figures are stale (new answers since the last
# computation) and, while a recompute runs, how far it has got.
RICHHF_DASHBOARD_POLL_MS = int(os.environ.get("RICHHF_DASHBOARD_POLL_MS", "5000"))

# --- quality ---
# Rater quality control (issue 13): reliability from co-rater agreement, actions, audit log.
INSTALLED_APPS.append("aggregation.quality")
# A quality recompute waits this long after an item completes, so a burst of answers costs one run.
RICHHF_QUALITY_DEBOUNCE_S = int(os.environ.get("RICHHF_QUALITY_DEBOUNCE_S", "60"))
CELERY_BEAT_SCHEDULE["quality-recompute"] = {
    "task": "quality.recompute_all",
    "schedule": timedelta(seconds=int(os.environ.get("RICHHF_QUALITY_EVERY_S", "900"))),
}
