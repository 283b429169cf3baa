"""An example Django project that sends its mail through django-txmail.

By default it talks to the local sandbox (``manage.py txmail_sandbox``), so
it needs no provider account. To send for real, set ``TXMAIL_NYLAS_API_URI``
and ``TXMAIL_NYLAS_API_KEY`` to your Nylas account and ``TXMAIL_NYLAS_SANDBOX=0``.
"""

import os
from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-project-not-secret")
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_txmail",
    "shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "example_project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB_PATH", BASE_DIR / "db.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
MEDIA_ROOT = os.environ.get("EXAMPLE_MEDIA_ROOT", BASE_DIR / "media")

DEFAULT_FROM_EMAIL = "Example Shop <noreply@example.com>"
SERVER_EMAIL = "alerts@example.com"
ADMINS = ["ops@example.com"] if django.VERSION >= (6, 0) else [("Ops", "ops@example.com")]

# Django 6.1 configures backends in MAILERS; earlier versions use EMAIL_BACKEND.
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "django_txmail.backends.EmailBackend"}}
else:
    EMAIL_BACKEND = "django_txmail.backends.EmailBackend"

TXMAIL = {
    "PROVIDERS": {
        "nylas": {
            "ADAPTER": "nylas",
            "API_KEY": os.environ.get("TXMAIL_NYLAS_API_KEY", "sandbox-nylas-key"),
            "API_URI": os.environ.get("TXMAIL_NYLAS_API_URI", "http://127.0.0.1:8025"),
            # The sandbox sends from domains that are not DNS-verified yet.
            # Set TXMAIL_NYLAS_SANDBOX=0 when API_URI points at Nylas itself.
            "SANDBOX": os.environ.get("TXMAIL_NYLAS_SANDBOX", "1") == "1",
            # Signs the sandbox's webhooks to this app; the real one comes from Nylas.
            "WEBHOOK_SECRET": os.environ.get("TXMAIL_NYLAS_WEBHOOK_SECRET", "demo-webhook-secret"),
        },
    },
    "DEFAULT_PROVIDER": "nylas",
    "TIMEOUT": 10,
}
