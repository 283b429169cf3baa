"""Settings for a WSGI server process started by the tests (gunicorn).

The worker processes' settings (the test database, ``TXMAIL_TEST_TXMAIL``),
answering requests for the loopback address it listens on.
"""

from tests.worker_settings import *  # noqa: F403

ALLOWED_HOSTS = ["127.0.0.1"]
