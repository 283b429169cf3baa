"""pytest fixtures for testing against the sandbox.

``txmail_sandbox``
    The sandbox, emptied before each test: no messages, no request log, no
    idempotency keys, no injected faults, no fault plan, no webhook targets
    (configured or registered) and default webhook options. Its ``url`` is the
    provider API URI. Under pytest-django, the test's mail goes through
    django-txmail's email backend: Django's test runner puts every test on its
    locmem backend, and a test that asks for the sandbox wants its mail to
    reach it (pytest-django's ``settings`` fixture puts the setting back).
``txmail_sandbox_server``
    The same server, session-scoped: started once on a free loopback port.
``txmail_sandbox_api_keys``
    The Nylas API keys it accepts; override this session-scoped fixture in a
    conftest to use others.
``txmail_sandbox_mailtrap_tokens``, ``txmail_sandbox_mailerlogic_keys``
    The same for the Mailtrap API tokens and MailerLogic API keys.

The module is registered through the ``pytest11`` entry point of the
``django-txmail-sandbox`` distribution when it is installed, and a conftest
can also list ``"txmail_sandbox.pytest_plugin"`` in ``pytest_plugins``.
Either way it is registered once: whichever name it is registered under
first, it blocks the other, so pytest skips the second registration instead
of failing on it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from txmail_sandbox.server import (
    DEFAULT_MAILERLOGIC_API_KEY,
    DEFAULT_MAILTRAP_API_TOKEN,
    DEFAULT_NYLAS_API_KEY,
    SandboxServer,
)

#: The name under which the ``pytest11`` entry point registers this module.
ENTRY_POINT_NAME = "txmail_sandbox"
#: django-txmail's email backend, for the tests that send to the sandbox.
TXMAIL_BACKEND = "django_txmail.backends.EmailBackend"


def pytest_plugin_registered(plugin: Any, manager: Any) -> None:
    this_module = sys.modules[__name__]
    if plugin is not this_module:
        return
    registered_as = manager.get_name(plugin)
    for name in (ENTRY_POINT_NAME, __name__):
        if name != registered_as and not manager.is_blocked(name):
            manager.set_blocked(name)


@pytest.fixture(scope="session")
def txmail_sandbox_api_keys() -> set[str]:
    return {DEFAULT_NYLAS_API_KEY}


@pytest.fixture(scope="session")
def txmail_sandbox_mailtrap_tokens() -> set[str]:
    return {DEFAULT_MAILTRAP_API_TOKEN}


@pytest.fixture(scope="session")
def txmail_sandbox_mailerlogic_keys() -> set[str]:
    return {DEFAULT_MAILERLOGIC_API_KEY}


@pytest.fixture(scope="session")
def txmail_sandbox_server(
    txmail_sandbox_api_keys: set[str],
    txmail_sandbox_mailtrap_tokens: set[str],
    txmail_sandbox_mailerlogic_keys: set[str],
) -> Iterator[SandboxServer]:
    server = SandboxServer(
        "127.0.0.1",
        0,
        nylas_api_keys=txmail_sandbox_api_keys,
        mailtrap_api_tokens=txmail_sandbox_mailtrap_tokens,
        mailerlogic_api_keys=txmail_sandbox_mailerlogic_keys,
    )
    with server:
        yield server


@pytest.fixture
def txmail_sandbox(
    request: pytest.FixtureRequest, txmail_sandbox_server: SandboxServer
) -> SandboxServer:
    txmail_sandbox_server.set_fault_plan(None)
    txmail_sandbox_server.clear_webhooks()
    txmail_sandbox_server.reset()
    _send_through_django_txmail(request)
    return txmail_sandbox_server


def _send_through_django_txmail(request: pytest.FixtureRequest) -> None:
    """Undo, for this test, the test runner's switch to Django's locmem backend.

    Only under pytest-django with settings configured; the sandbox itself
    needs neither Django nor django-txmail, so nothing is imported here that
    pytest-django has not imported already.
    """
    django = sys.modules.get("django")
    if django is None or not request.config.pluginmanager.hasplugin("django"):
        return
    if not sys.modules["django.conf"].settings.configured:
        return
    settings = request.getfixturevalue("settings")
    if django.VERSION >= (6, 1):  # MAILERS replaces EMAIL_BACKEND
        settings.MAILERS = {"default": {"BACKEND": TXMAIL_BACKEND}}
    else:
        settings.EMAIL_BACKEND = TXMAIL_BACKEND
