"""The sandbox's own tests: over real HTTP on loopback, with neither Django
nor django-txmail. The ``txmail_sandbox`` fixtures come from this
distribution's pytest plugin (its ``pytest11`` entry point)."""

from __future__ import annotations

import pytest
import requests


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session
