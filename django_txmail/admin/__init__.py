"""Admin pages: sending domains, grants, templates, the outbox with its events, and the
suppression list."""

from django_txmail.admin import (  # noqa: F401  (registers the ModelAdmins)
    delivery_events,
    domains,
    messages,
    suppressions,
    templates,
)
