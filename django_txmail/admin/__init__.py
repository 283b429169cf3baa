"""Admin pages: sending domains, grants, templates, and the outbox with its events."""

from . import domains, events, messages, templates  # noqa: F401  (registers the ModelAdmins)
