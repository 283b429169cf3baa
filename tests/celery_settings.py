"""Settings for the Celery worker processes the tests start (tests/test_celery.py).

The worker runs ``django_tasks_fennel.app`` (a Celery app configured from
these settings' ``CELERY_*`` names) on the test database, the TXMAIL setting
the test passes in ``TXMAIL_TEST_TXMAIL`` and the Redis in
``TXMAIL_TEST_CELERY_BROKER``.
"""

import os

from tests.worker_settings import *  # noqa: F403
from tests.worker_settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks_fennel"]
TASKS = {"default": {"BACKEND": "django_tasks_fennel.CeleryBackend"}}
CELERY_BROKER_URL = os.environ["TXMAIL_TEST_CELERY_BROKER"]
# The delivery task is registered when its module is imported.
CELERY_IMPORTS = ["django_txmail.sending.tasks"]
