"""System checks: configuration mistakes reported at startup, not at first send."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from importlib import import_module
from types import ModuleType
from typing import Any

import django
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections, router
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from django_txmail.conf import (
    BACKEND_OPTIONS,
    BACKEND_PATH,
    SETTINGS_KEYS,
    ProviderAccount,
    TxMailSettings,
    did_you_mean,
    get_settings,
)
from django_txmail.providers.base import load_adapter


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    raw = getattr(settings, "TXMAIL", {}) or {}
    errors = _unknown_keys(raw, SETTINGS_KEYS, "TXMAIL") if isinstance(raw, dict) else []
    try:
        config = get_settings()
    except ImproperlyConfigured as exc:
        return [
            *errors,
            Error(str(exc), hint="See the TXMAIL section of the README.", id="txmail.E001"),
        ]
    if not config.providers:
        errors.append(_no_providers())
    for account in config.providers.values():
        errors.extend(_account_errors(account))
    for account in config.providers.values():
        if not account.webhook_secrets and not account.sandbox:
            errors.append(
                Warning(
                    f"TXMAIL['PROVIDERS'][{account.name!r}] has no WEBHOOK_SECRET: its "
                    "webhook endpoint refuses every request, so no delivery events arrive.",
                    hint="Copy the signing secret from the provider's webhook settings.",
                    id="txmail.W001",
                )
            )
    errors.extend(_mailers_errors(config))
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
    if config.delivery == "task":
        errors.extend(_task_delivery_errors(config))
    return errors


def _unknown_keys(given: Iterable[Any], known: Iterable[str], where: str) -> list[CheckMessage]:
    """E010 for each key of ``given`` that is not one of ``known`` (a typo, most likely)."""
    known = sorted(known)
    return [
        Error(
            f"{where} has an unknown key {key!r}.",
            hint=did_you_mean(str(key), known).strip() or f"It takes: {', '.join(known)}.",
            id="txmail.E010",
        )
        for key in sorted(given, key=str)
        if key not in known
    ]


def _account_errors(account: ProviderAccount) -> list[CheckMessage]:
    """The adapter cannot be loaded (E003), a key is unknown (E010), a credential is missing
    (E004)."""
    try:
        adapter = load_adapter(account)
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="txmail.E003")]
    errors = _unknown_keys(
        account.keys, adapter.account_keys(), f"TXMAIL['PROVIDERS'][{account.name!r}]"
    )
    try:
        adapter.check_account()
    except ImproperlyConfigured as exc:
        errors.append(Error(str(exc), id="txmail.E004"))
    return errors


def _our_mailers() -> dict[str, dict[str, Any]]:
    """The entries of Django 6.1's ``MAILERS`` that use this app's backend, by alias."""
    mailers = getattr(settings, "MAILERS", None) or {}
    return {
        alias: entry
        for alias, entry in mailers.items()
        if isinstance(entry, dict) and entry.get("BACKEND") == BACKEND_PATH
    }


def _is_mail_backend() -> bool:
    """Whether Django sends mail through this app's backend (EMAIL_BACKEND or MAILERS).

    Django's test runner switches both to its locmem backend, so this is
    false under test unless a test switches back.
    """
    return getattr(settings, "EMAIL_BACKEND", "") == BACKEND_PATH or bool(_our_mailers())


def _no_providers() -> CheckMessage:
    """E002 where this app's backend sends the mail; else W010, so a project that has
    not configured a provider yet can still migrate, run and test."""
    message = "TXMAIL['PROVIDERS'] is empty: there is no provider account to send through."
    hint = (
        "Add an account, e.g. {'nylas': {'ADAPTER': 'nylas', 'API_KEY': ..., "
        "'API_URI': 'https://api.us.nylas.com'}}, or run the local sandbox."
    )
    if _is_mail_backend():
        return Error(f"{message} Every send raises.", hint=hint, id="txmail.E002")
    return Warning(
        f"{message} That is an error (txmail.E002) once django_txmail is the mail backend.",
        hint=hint,
        id="txmail.W010",
    )


def _mailers_errors(config: TxMailSettings) -> list[CheckMessage]:
    """OPTIONS of this app's backend in ``MAILERS`` that it does not take (E010), or a
    ``provider`` that names no account (E011)."""
    errors: list[CheckMessage] = []
    for alias, entry in _our_mailers().items():
        options = entry.get("OPTIONS") or {}
        where = f"MAILERS[{alias!r}]['OPTIONS']"
        errors.extend(_unknown_keys(options, BACKEND_OPTIONS, where))
        provider = options.get("provider")
        if provider and provider not in config.providers:
            configured = ", ".join(sorted(config.providers)) or "none"
            errors.append(
                Error(
                    f"{where}['provider'] is {provider!r}, which is not an account of "
                    f"TXMAIL['PROVIDERS'] (configured: {configured}).",
                    hint=did_you_mean(provider, config.providers).strip()
                    or "Name one of the accounts, or add this one to TXMAIL['PROVIDERS'].",
                    id="txmail.E011",
                )
            )
    return errors


def _tasks_framework() -> ModuleType | None:
    """``django.tasks`` on Django 6.0+, the ``django_tasks`` backport on 5.2; None if missing.

    Imported here rather than through ``tasks.py``, which would bind the
    delivery task to the very backend this check is about to look at.
    """
    try:
        return import_module("django.tasks" if django.VERSION >= (6, 0) else "django_tasks")
    except ImportError:
        return None


def task_delivery_error(config: TxMailSettings) -> Error | None:
    """Why no task can be enqueued on ``TXMAIL["TASK_BACKEND"]`` (E007, E008), or None.

    Task delivery asks this before anything is recorded (``outbox.dispatch``), so
    a send that cannot be handed to a task raises instead of leaving a row behind.
    """
    framework = _tasks_framework()
    if framework is None:
        return Error(
            "TXMAIL['DELIVERY'] is 'task', but Django's Tasks framework is not installed "
            "(Django 5.2 needs its backport).",
            hint="pip install django-tasks (or django-txmail[tasks]) and add 'django_tasks' "
            "to INSTALLED_APPS, or set TXMAIL['DELIVERY'] = 'immediate'.",
            id="txmail.E007",
        )
    alias = config.task_backend
    handler = framework.task_backends
    if alias not in handler.settings:
        configured = ", ".join(map(repr, handler.settings)) or "none"
        return Error(
            f"TXMAIL['TASK_BACKEND'] is {alias!r}, which is not a key of TASKS "
            f"(configured: {configured}).",
            hint="Add that backend to TASKS, or set TXMAIL['TASK_BACKEND'] to one of them.",
            id="txmail.E008",
        )
    try:
        handler[alias]
    except handler.exception_class as exc:
        return Error(f"TASKS[{alias!r}] cannot be loaded: {exc}", id="txmail.E008")
    return None


def _task_delivery_errors(config: TxMailSettings) -> list[Error]:
    error = task_delivery_error(config)
    if error is not None:
        return [error]
    alias = config.task_backend
    backend = _tasks_framework().task_backends[alias]
    if not backend.supports_defer and config.max_attempts > 1:
        return [
            Error(
                f"The task backend {alias!r} ({type(backend).__name__}) cannot defer tasks, "
                f"but TXMAIL['MAX_ATTEMPTS'] = {config.max_attempts} asks for retries: a "
                "message that meets a transient failure would wait for txmail_worker instead "
                "of a task.",
                hint="Use a task backend that can defer, such as django-tasks-db's "
                "DatabaseBackend (one machine) or django-tasks-rq's RQBackend (several), and "
                "run txmail_worker beside it as the sweeper; or set TXMAIL['MAX_ATTEMPTS'] = 1 "
                "to turn retries off. ImmediateBackend runs each task at once: "
                "TXMAIL['DELIVERY'] = 'immediate' does the same without a task backend.",
                id="txmail.E009",
            )
        ]
    return []


@register(Tags.database)
def check_sending_domains(
    app_configs: Any = None, databases: list[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Warn about domains that send unverified (W002) or were last checked long ago (W003).

    A database check: it runs with ``migrate`` and ``check --database default``,
    not on every ``runserver``, and says nothing while the tables do not exist yet.
    Domains of sandbox accounts are left out: they may send unverified.
    """
    from django_txmail.models import SendingDomain

    alias = router.db_for_read(SendingDomain)
    if not databases or alias not in databases:
        return []
    try:
        config = get_settings()
        domains = list(SendingDomain.objects.using(alias).order_by("name", "provider"))
    except (ImproperlyConfigured, DatabaseError):
        return []  # E001 reports the setting; no table yet before the first migrate
    stale_before = timezone.now() - timedelta(seconds=config.domain_check_max_age)
    warnings: list[CheckMessage] = []
    for domain in domains:
        account = config.providers.get(domain.provider)
        if account is None or account.sandbox:
            continue
        command = f"manage.py txmail_verify_domains {domain.name}"
        if domain.status != SendingDomain.Status.VERIFIED:
            effect = (
                "it sends anyway (allow unverified), and unauthenticated mail goes to spam"
                if domain.allow_unverified
                else "mail from it is refused until it is verified"
            )
            warnings.append(
                Warning(
                    f"Sending domain {domain.name} ({domain.provider}) is {domain.status}: "
                    f"{effect}.",
                    hint=f"Run `{command}` and publish the records it reports.",
                    obj=domain,
                    id="txmail.W002",
                )
            )
        elif domain.last_checked is None or domain.last_checked < stale_before:
            when = f"{domain.last_checked:%Y-%m-%d}" if domain.last_checked else "never"
            warnings.append(
                Warning(
                    f"Sending domain {domain.name} ({domain.provider}) was last checked: "
                    f"{when}. DNS changes since then (an expired DKIM key, an SPF edit) go "
                    "unnoticed until mail bounces.",
                    hint=f"Run `{command}` from cron, daily, so a broken record is seen first "
                    "by you (TXMAIL['DOMAIN_CHECK_MAX_AGE'] sets how old is too old).",
                    obj=domain,
                    id="txmail.W003",
                )
            )
    return warnings


@register(Tags.database)
def check_route_accounts(
    app_configs: Any = None, databases: list[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Warn (W011) about sending domains and grants whose provider names no account.

    Mail from them raises ``ImproperlyConfigured`` at send time: a typo saved
    before the admin offered a choice, or an account since removed from
    ``TXMAIL["PROVIDERS"]``. A database check, like W002.
    """
    from django_txmail.models import Grant, SendingDomain, admin_path

    warnings: list[CheckMessage] = []
    for model in (SendingDomain, Grant):
        alias = router.db_for_read(model)
        if not databases or alias not in databases:
            continue
        try:
            config = get_settings()
            strays = list(model.objects.using(alias).exclude(provider__in=list(config.providers)))
        except (ImproperlyConfigured, DatabaseError):
            return []  # E001 reports the setting; no table yet before the first migrate
        configured = ", ".join(sorted(config.providers)) or "none"
        warnings.extend(
            Warning(
                f"{model._meta.verbose_name.capitalize()} {row} names the provider "
                f"{row.provider!r}, which is not an account of TXMAIL['PROVIDERS'] "
                f"(configured: {configured}): sending through it raises.",
                hint=f"Choose its account in the admin ({admin_path(model)})."
                + did_you_mean(row.provider, config.providers),
                obj=row,
                id="txmail.W011",
            )
            for row in strays
        )
    return warnings


@register(Tags.database)
def check_failover_domains(
    app_configs: Any = None, databases: list[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Warn (W020) about a sending domain whose account names a FAILOVER account that has
    no ``SendingDomain`` for it: mail from that domain cannot move there."""
    from django_txmail.models import SendingDomain, admin_path

    alias = router.db_for_read(SendingDomain)
    if not databases or alias not in databases:
        return []
    try:
        config = get_settings()
        pairs = set(SendingDomain.objects.using(alias).values_list("name", "provider"))
    except (ImproperlyConfigured, DatabaseError):
        return []  # E001 reports the setting; no table yet before the first migrate
    return [
        Warning(
            f"Sending domain {name!r} is on account {provider!r}, whose FAILOVER names "
            f"{fallback!r}, but {name!r} is not set up on {fallback!r}: its mail cannot "
            f"move there when {provider!r} is down.",
            hint=f"Add a SendingDomain {name!r} with provider {fallback!r} "
            f"({admin_path(SendingDomain)}) and verify it at that provider.",
            id="txmail.W020",
        )
        for name, provider in sorted(pairs)
        if provider in config.providers
        for fallback in config.providers[provider].flow.failover
        if (name, fallback) not in pairs
    ]


#: The DATABASES OPTIONS that let an SQLite outbox take several writers (Django 5.1+).
SQLITE_OPTIONS = (
    '"OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;", '
    '"transaction_mode": "IMMEDIATE", "timeout": 30}'
)


@register(Tags.database)
def check_outbox_database(
    app_configs: Any = None, databases: list[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Warn (W004) when the outbox is in SQLite without WAL.

    With SQLite's default rollback journal every commit waits for the disk
    several times and a writer locks out every reader: recording and sending
    cost several times what they cost with WAL, and a worker beside the web
    process meets "database is locked". A database check: it asks the
    database, so it runs with ``migrate`` and ``check --database``.
    """
    from django_txmail.models import Message

    alias = router.db_for_write(Message)
    if not databases or alias not in databases:
        return []
    connection = connections[alias]
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        return []
    try:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            mode = str(cursor.fetchone()[0]).lower()
    except DatabaseError:
        return []
    if mode == "wal":
        return []
    return [
        Warning(
            f"The outbox database {alias!r} is SQLite in journal mode {mode!r}: each message "
            "waits for the disk several times, and a txmail_worker beside the web process "
            "meets 'database is locked'.",
            hint=f"Add to DATABASES[{alias!r}]: {SQLITE_OPTIONS}.",
            id="txmail.W004",
        )
    ]


@register(Tags.compatibility)
def check_streams(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """A stream with one-click unsubscribe needs the site's public origin for its links."""
    try:
        config = get_settings()
    except ImproperlyConfigured:
        return []  # check_settings reports it
    if not config.streams_configured or config.base_url:
        return []
    return [
        Error(
            f"TXMAIL['STREAMS'][{stream.name!r}] has UNSUBSCRIBE, and TXMAIL['BASE_URL'] is not "
            "set: its one-click unsubscribe links cannot be built.",
            hint="Set TXMAIL['BASE_URL'] to the site's public origin, e.g. "
            "'https://mail.example.com'.",
            id="txmail.E016",
        )
        for stream in config.streams.values()
        if stream.unsubscribe
    ]


@register(Tags.urls)
def check_grant_connect(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """The connect URLs (``django_txmail.grant_urls``) need an account with a ``CLIENT_ID``."""
    if not getattr(settings, "ROOT_URLCONF", None):
        return []
    try:
        reverse("txmail_grants:connect")
        config = get_settings()
    except (NoReverseMatch, ImproperlyConfigured):
        return []  # not installed, or check_settings reports it
    if any(account.options.get("CLIENT_ID") for account in config.providers.values()):
        return []
    return [
        Error(
            "The mailbox connect URLs (django_txmail.grant_urls) are installed, and no account "
            "in TXMAIL['PROVIDERS'] has a CLIENT_ID: users cannot connect a mailbox.",
            hint="Add the Nylas application's client id as 'CLIENT_ID' to its account "
            "(see docs/grants.md), or remove the grant URLs.",
            id="txmail.E040",
        )
    ]


#: What Django's own mail (error reports, password resets) is sent from.
SENDER_SETTINGS = ("SERVER_EMAIL", "DEFAULT_FROM_EMAIL")


@register(Tags.database)
def check_server_email(
    app_configs: Any = None, databases: list[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Warn (W005) when error emails to ADMINS would have no route.

    Django's ``AdminEmailHandler`` mails every 500 from ``SERVER_EMAIL``, and
    the backend only logs what it cannot send there (an error report must not
    raise): from an address no Grant or SendingDomain covers (Django's default
    is ``root@localhost``) the report is never sent. A database check, like
    W002: it runs with ``migrate`` and ``check --database``.
    """
    from email.utils import parseaddr

    from django_txmail.models import Grant, SendingDomain

    alias = router.db_for_read(SendingDomain)
    if not databases or alias not in databases or not settings.ADMINS:
        return []
    if not _is_mail_backend():
        return []
    warnings: list[CheckMessage] = []
    for name in SENDER_SETTINGS:
        address = parseaddr(getattr(settings, name))[1].lower()
        domain = address.rpartition("@")[2]
        try:
            routed = (
                Grant.objects.using(alias).filter(email=address, is_active=True).exists()
                or SendingDomain.objects.using(alias).filter(name=domain).exists()
            )
        except DatabaseError:
            return []  # no tables before the first migrate
        if not routed:
            warnings.append(
                Warning(
                    f"settings.{name} is {address!r}, from which no route sends (no "
                    f"SendingDomain {domain!r}, no Grant): error reports to ADMINS and other "
                    "mail Django sends from it are dropped, logged as errors by "
                    "django_txmail.backends.",
                    hint=f"Set {name} to an address at one of your sending domains.",
                    id="txmail.W005",
                )
            )
    return warnings


@register(Tags.compatibility)
def check_sqlite_beside_workers(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Warn (W006) when task delivery keeps the outbox in SQLite without IMMEDIATE.

    Task workers write beside the web process. A transaction that starts
    by reading (Django's default, deferred) and then writes while another
    process writes fails at once with "database is locked", whatever the
    timeout: webhooks are answered 503, and a provider gives up after a few
    tries, leaving messages "sent" for good.
    """
    try:
        delivery = get_settings().delivery
    except ImproperlyConfigured:
        return []  # E001
    if delivery != "task":
        return []
    from django_txmail.models import Message

    alias = router.db_for_write(Message)
    connection = connections[alias]
    options = connection.settings_dict.get("OPTIONS") or {}
    if connection.vendor != "sqlite" or options.get("transaction_mode") == "IMMEDIATE":
        return []
    return [
        Warning(
            f"TXMAIL['DELIVERY'] is 'task' and the outbox database {alias!r} is SQLite "
            "without transaction_mode IMMEDIATE: while a worker writes, the web process "
            "meets 'database is locked' and delivery events are lost.",
            hint=f"Add to DATABASES[{alias!r}]: {SQLITE_OPTIONS}.",
            id="txmail.W006",
        )
    ]


@register(Tags.security, deploy=True)
def check_accounts_for_production(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``check --deploy``: accounts still set up for a laptop (W012, W013)."""
    try:
        accounts = get_settings().providers.values()
    except ImproperlyConfigured:
        return []  # E001
    warnings: list[CheckMessage] = []
    for account in accounts:
        where = f"TXMAIL['PROVIDERS'][{account.name!r}]"
        if account.sandbox:
            warnings.append(
                Warning(
                    f"{where} has 'SANDBOX': True: its sending domains send unverified, as "
                    "only the local sandbox should.",
                    hint="Remove SANDBOX and point API_URI at the provider for production.",
                    id="txmail.W012",
                )
            )
        if account.api_uri.lower().startswith("http://"):
            warnings.append(
                Warning(
                    f"{where}['API_URI'] is {account.api_uri!r}: plain HTTP, so the "
                    "account's key and every message travel unencrypted.",
                    hint="Use the provider's https:// API URI.",
                    id="txmail.W013",
                )
            )
    return warnings
