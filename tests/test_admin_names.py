"""Docs and messages name the admin's pages as the admin itself shows them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.apps import apps
from django.utils.text import capfirst

from django_txmail.exceptions import TemplateError
from django_txmail.stored_templates.render import get_template

REPO = Path(__file__).resolve().parent.parent


def texts() -> dict[str, str]:
    files = [REPO / "README.md", *(REPO / "docs").rglob("*.md")]
    package = REPO / "django_txmail"
    files += [*package.rglob("*.py"), *package.rglob("*.html")]
    return {str(path.relative_to(REPO)): path.read_text() for path in files}


def test_every_admin_location_named_in_docs_and_code_is_the_admins_own():
    config = apps.get_app_config("django_txmail")
    section = str(config.verbose_name)
    lists = [str(capfirst(model._meta.verbose_name_plural)) for model in config.get_models()]
    location = re.compile(
        rf"([A-Z][a-z]+(?: [a-z]+)?) (?:→|›) ({'|'.join(map(re.escape, lists))})\b"
    )
    named = [
        (where, match.group(0))
        for where, text in texts().items()
        for match in location.finditer(text)
    ]
    assert len(named) >= 5  # README and docs name the admin's lists several times
    wrong = [(where, name) for where, name in named if not name.startswith(section)]
    assert wrong == [], f"the admin's section is {section!r}"


@pytest.mark.django_db
def test_a_missing_template_says_where_the_admin_keeps_templates():
    with pytest.raises(TemplateError) as missing:
        get_template("welcome")
    assert "add it in the admin (Transactional mail → Templates)" in str(missing.value)
