"""Layer rules that import-linter cannot express (it sees only top-level external packages)."""

from __future__ import annotations

import subprocess
import sys


def test_provider_adapters_load_without_the_database_layer():
    # Adapters are pure translations: importing every built-in one (in a fresh
    # interpreter, with no settings) loads neither our models nor django.db.
    code = (
        "import sys\n"
        "import django_txmail.providers.nylas, django_txmail.providers.mailtrap\n"
        "import django_txmail.providers.mailerlogic, django_txmail.providers.multipart\n"
        "print(sorted(m for m in sys.modules if m.startswith(('django.db', 'django_txmail.models',"
        " 'requests'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
