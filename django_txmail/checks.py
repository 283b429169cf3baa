"""System checks: configuration mistakes reported at startup, not at first send."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

from .conf import get_settings
from .providers.base import adapter_class


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors: list[Error] = []
    try:
        config = get_settings()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint="See the TXMAIL section of the README.", id="txmail.E001")]
    if not config.providers:
        errors.append(
            Error(
                "TXMAIL['PROVIDERS'] is empty: there is no provider account to send through.",
                hint="Add an account, e.g. {'nylas': {'ADAPTER': 'nylas', 'API_KEY': ..., "
                "'API_URI': 'https://api.us.nylas.com'}}, or run the local sandbox.",
                id="txmail.E002",
            )
        )
    for account in config.providers.values():
        try:
            adapter = adapter_class(account.adapter)
        except ImproperlyConfigured as exc:
            errors.append(Error(str(exc), id="txmail.E003"))
            continue
        missing = [k for k in adapter.required_credentials if k not in account.credentials]
        if missing:
            errors.append(
                Error(
                    f"TXMAIL['PROVIDERS'][{account.name!r}] has no {', '.join(missing)}.",
                    hint="Read it from the environment in settings.py; never store it in code.",
                    id="txmail.E004",
                )
            )
    if not settings.USE_TZ:
        errors.append(
            Error(
                "django_txmail needs USE_TZ = True: send times and retry times are "
                "stored as aware datetimes.",
                id="txmail.E006",
            )
        )
    if "rest_framework" not in settings.INSTALLED_APPS:
        errors.append(
            Error(
                "django_txmail needs 'rest_framework' in INSTALLED_APPS.",
                id="txmail.E005",
            )
        )
    return errors
