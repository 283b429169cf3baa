"""Settings for the test suite.

The database is SQLite unless ``TXMAIL_TEST_DB=postgres``; then the usual
libpq variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE) say where
the server is. ``scripts/test.sh`` runs the suite once on each.
"""

import os
import tempfile

import django

# One scratch directory per test session, shared with the worker processes
# the tests start (they inherit the environment variable).
TEST_TMP = os.environ.setdefault("TXMAIL_TEST_TMP", tempfile.mkdtemp(prefix="txmail-test-"))

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # The admin's CSS and JavaScript for the browser tests (tests/test_admin_browser.py).
    "django.contrib.staticfiles",
    "rest_framework",
    "django_txmail",
    # The REST API's OpenAPI document and its docs page (tests/test_api_schema.py).
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Task delivery (tests/test_tasks.py): the database and RQ task backends.
    "django_tasks_db",
    "django_rq",
]
# Django 6.0+ has the Tasks framework as django.tasks; 5.2 has its backport.
if django.VERSION < (6, 0):
    INSTALLED_APPS.append("django_tasks")
_tasks = "django.tasks" if django.VERSION >= (6, 0) else "django_tasks"
TASKS = {"default": {"BACKEND": f"{_tasks}.backends.immediate.ImmediateBackend"}}
# Nothing listens there: tests/test_tasks.py points the queue at the Redis it starts.
RQ_QUEUES = {"default": {"HOST": "127.0.0.1", "PORT": 9, "DB": 0}}

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # tests/templates: files stored templates extend (tests/test_templates.py).
        "DIRS": [os.path.join(os.path.dirname(__file__), "templates")],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

if os.environ.get("TXMAIL_TEST_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "PASSWORD": os.environ.get("PGPASSWORD", ""),
            "NAME": os.environ.get("PGDATABASE", "txmail"),
            "TEST": {"NAME": os.environ.get("TXMAIL_TEST_PGDATABASE", "test_txmail")},
        }
    }
else:
    # A file, not :memory:, so worker threads and worker processes started by
    # the tests share the test database. WAL and IMMEDIATE transactions are
    # what several SQLite writers need.
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(TEST_TMP, "txmail.sqlite3"),
            "TEST": {"NAME": os.path.join(TEST_TMP, "test-txmail.sqlite3")},
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;",
            },
        }
    }

MEDIA_ROOT = os.path.join(TEST_TMP, "media")
# pytest-django's live_server (tests/test_webhooks_e2e.py) wraps the app in a
# static files handler that cannot start without a STATIC_URL.
STATIC_URL = "/static/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Django 6.1 configures backends in MAILERS and deprecates EMAIL_BACKEND;
# 6.0 takes ADMINS as plain addresses.
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "django_txmail.backends.EmailBackend"}}
else:
    EMAIL_BACKEND = "django_txmail.backends.EmailBackend"
ADMINS = ["ops@example.com"] if django.VERSION >= (6, 0) else [("Ops", "ops@example.com")]
DEFAULT_FROM_EMAIL = "noreply@example.com"
SERVER_EMAIL = "server@example.com"

# The suite's conftest points API_URI at a sandbox on an ephemeral port.
TXMAIL = {
    "PROVIDERS": {
        "nylas": {
            "ADAPTER": "nylas",
            "API_KEY": "sandbox-nylas-key",
            "API_URI": "http://127.0.0.1:9",
            "SANDBOX": True,
        },
    },
    "DEFAULT_PROVIDER": "nylas",
    "TIMEOUT": 5,
}
