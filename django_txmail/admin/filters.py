"""Message list filters whose choices cost nothing to find.

Django's default filter for a plain column lists its values with
``SELECT DISTINCT`` over the whole table, on every page view. These take
their choices from small tables or from settings instead; each filters on
an indexed column of ``Message`` (see its ``Meta.indexes``).
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from django_txmail.conf import get_settings
from django_txmail.models import SendingDomain, Template


class _ExactFilter(admin.SimpleListFilter):
    field: str

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.field: value}) if value is not None else queryset


class ProviderFilter(_ExactFilter):
    """The provider accounts named in ``TXMAIL["PROVIDERS"]``."""

    title = _("provider")
    parameter_name = field = "provider"

    def lookups(self, request, model_admin):
        return [(name, name) for name in sorted(get_settings().providers)]


class DomainFilter(_ExactFilter):
    """The sending domains set up in the admin (messages on the domain route)."""

    title = _("sending domain")
    parameter_name = field = "route_domain"

    def lookups(self, request, model_admin):
        names = SendingDomain.objects.order_by("name").values_list("name", flat=True).distinct()
        return [(name, name) for name in names]


class TemplateFilter(_ExactFilter):
    """The stored templates a message was rendered from."""

    title = _("template")
    parameter_name = field = "template"

    def lookups(self, request, model_admin):
        return list(Template.objects.order_by("slug").values_list("slug", "name"))


class StreamFilter(_ExactFilter):
    """The streams named in ``TXMAIL["STREAMS"]``."""

    title = _("stream")
    parameter_name = field = "stream"

    def lookups(self, request, model_admin):
        return [(name, name) for name in sorted(get_settings().streams)]
