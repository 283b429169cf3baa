"""Paging through a big outbox without counting it.

Django's change list asks its paginator for ``count``, which is a
``SELECT COUNT(*)`` over the filtered rows — even with
``show_full_result_count = False``. On a table of millions of messages that
one query costs more than the rest of the page. ``OutboxPaginator`` instead
asks only whether there is a next page (the rows of this page plus one,
primary keys only, through the same index the page uses). It knows the
exact total once it reaches the last page; before that it reports "more",
or, for the unfiltered list on PostgreSQL, the planner's row estimate
(``pg_class.reltuples``), shown as "about N".

Because no total is known, nothing may act on "all N": the lists refuse
Django's select-across (``select_across``) and do not offer its link, so a
list action only ever touches the rows ticked on the page. A page past the
end is out of range, as in any change list (a redirect to the first page),
however large its number.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.formats import number_format
from django.utils.functional import cached_property
from django.utils.translation import gettext as _

#: The largest row offset databases take (a signed 64-bit integer).
MAX_OFFSET = 2**63 - 1


def table_estimate(queryset: QuerySet) -> int | None:
    """The planner's row count for an unfiltered queryset's table (PostgreSQL), else None."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql" or queryset.query.where:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(queryset.model._meta.db_table)],
        )
        row = cursor.fetchone()
    # -1 (or 0) until the table was first vacuumed or analysed.
    return row[0] if row and row[0] > 0 else None


class OutboxPaginator(Paginator):
    """Pages of a queryset that never run ``COUNT(*)``; see the module docstring."""

    def __init__(self, object_list: QuerySet, per_page: int, *, page_number: int = 1) -> None:
        super().__init__(object_list, per_page)
        self.page_number = max(1, page_number)
        self.estimated = False
        self.has_more = False
        self.past_the_end = False

    @cached_property
    def count(self) -> int:
        offset = (self.page_number - 1) * self.per_page
        if offset + self.per_page + 1 > MAX_OFFSET:
            seen = 0  # no table has that many rows (and no database takes that offset)
        else:
            pks = self.object_list.values_list("pk", flat=True)
            seen = len(pks[offset : offset + self.per_page + 1])
        self.has_more = seen > self.per_page
        self.past_the_end = seen == 0 and self.page_number > 1
        known = offset + seen
        if self.has_more:
            estimate = table_estimate(self.object_list)
            if estimate is not None and estimate > known:
                self.estimated = True
                return estimate
        return known


def requested_page(request) -> int:
    try:
        return max(1, int(request.GET.get(PAGE_VAR, 1)))
    except ValueError:
        return 1


class CountlessList:
    """Mixed into a ModelAdmin of a big table: pages without COUNT(*), no "show all".

    The model needs ``pagination.html`` and ``search_form.html`` under
    ``admin/django_txmail/<model>/`` that use ``cl.count_text`` and the
    previous/next links (see the message list's).
    """

    show_full_result_count = False
    list_max_show_all = 0  # "show all" would load the whole table

    def response_action(
        self, request: HttpRequest, queryset: QuerySet, **kwargs
    ) -> HttpResponse | None:
        """Refuse "select all": its count is made up, and it would act on every filtered row."""
        select_across = self.action_form.base_fields["select_across"]
        if select_across.to_python(request.POST.get("select_across")):
            self.message_user(
                request,
                _(
                    "Selecting across all pages is not available here (the list does not "
                    "count its rows); tick the rows on this page, or narrow the list with "
                    "the filters and act page by page."
                ),
                messages.ERROR,
            )
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset, **kwargs)  # Django 6.1 adds one

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        return OutboxPaginator(queryset, per_page, page_number=requested_page(request))

    def get_changelist(self, request, **kwargs):
        return OutboxChangeList


class OutboxChangeList(ChangeList):
    """The change list with previous/next links and an honest count for OutboxPaginator."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        if self.paginator.past_the_end:
            # Django's answer to a page out of range: back to the first page (?e=1).
            raise IncorrectLookupParameters(f"There is no page {self.page_num}.")

    @property
    def count_text(self) -> str:
        paginator = self.paginator
        noun = self.opts.verbose_name if self.result_count == 1 else self.opts.verbose_name_plural
        if paginator.estimated:
            return _("about %(count)s %(noun)s") % {
                "count": number_format(self.result_count, force_grouping=True),
                "noun": noun,
            }
        if paginator.has_more:
            return _("more than %(count)s %(noun)s") % {
                "count": number_format(self.result_count - 1, force_grouping=True),
                "noun": noun,
            }
        return f"{number_format(self.result_count, force_grouping=True)} {noun}"

    @property
    def previous_url(self) -> str:
        if self.page_num <= 1:
            return ""
        return self.get_query_string({PAGE_VAR: self.page_num - 1})

    @property
    def next_url(self) -> str:
        if not self.paginator.has_more:
            return ""
        return self.get_query_string({PAGE_VAR: self.page_num + 1})
