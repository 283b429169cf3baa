"""Admin pages: sending domains, grants, templates, and the outbox with its events."""

from django_txmail.admin import delivery_events, domains, messages, templates  # noqa: F401  (registers the ModelAdmins)
