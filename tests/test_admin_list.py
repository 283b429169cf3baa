"""The message list: badges, filters, search, paging without COUNT(*), and no N+1 queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_txmail.models import Message, SendingDomain, Template

from .message_rows import event_row, message_row

pytestmark = pytest.mark.django_db
URL = reverse("admin:django_txmail_message_changelist")


def listed(client, **params) -> set[str]:
    response = client.get(URL, params)
    assert response.status_code == 200, response
    return {m.subject for m in response.context["cl"].result_list}


def test_statuses_show_as_coloured_badges(admin_client):
    message_row(status="delivered")
    message_row(status="bounced")
    page = admin_client.get(URL).text
    assert '<span class="txmail-badge txmail-good">delivered</span>' in page
    assert '<span class="txmail-badge txmail-bad">bounced</span>' in page


def test_each_filter_narrows_the_list(admin_client, settings):
    settings.TXMAIL = settings.TXMAIL | {
        "PROVIDERS": settings.TXMAIL["PROVIDERS"]
        | {"mailtrap": {"ADAPTER": "mailtrap", "API_TOKEN": "t", "API_URI": "http://127.0.0.1:9"}}
    }
    SendingDomain.objects.create(name="shop.example", provider="nylas")
    Template.objects.create(slug="welcome", name="Welcome", subject="Hi", html="<p>Hi</p>")
    message_row(subject="failed one", status="failed")
    message_row(subject="by mailtrap", provider="mailtrap")
    message_row(subject="from a grant", route="grant", route_domain="", route_grant_id="g-1")
    message_row(subject="from the shop", route_domain="shop.example")
    message_row(subject="welcome mail", template="welcome", template_version=3)
    message_row(subject="last year", created_at=timezone.now() - timedelta(days=400))
    assert listed(admin_client, status__exact="failed") == {"failed one"}
    assert listed(admin_client, provider="mailtrap") == {"by mailtrap"}
    assert listed(admin_client, route__exact="grant") == {"from a grant"}
    assert listed(admin_client, route_domain="shop.example") == {"from the shop"}
    assert listed(admin_client, template="welcome") == {"welcome mail"}
    cl = admin_client.get(URL).context["cl"]
    dates = next(s for s in cl.filter_specs if getattr(s, "field_path", "") == "created_at")
    week = next(c for c in dates.choices(cl) if c["display"] == "Past 7 days")
    response = admin_client.get(URL + week["query_string"])
    recent = {m.subject for m in response.context["cl"].result_list}
    assert "last year" not in recent and "welcome mail" in recent


def test_filter_choices_come_from_settings_domains_and_templates(admin_client):
    SendingDomain.objects.create(name="shop.example", provider="nylas")
    Template.objects.create(slug="welcome", name="Welcome", subject="Hi", html="<p>Hi</p>")
    page = admin_client.get(URL).text
    for choice in ("?provider=nylas", "?route_domain=shop.example", "?template=welcome"):
        assert choice in page


@pytest.mark.parametrize(
    "term",
    ["ann@x.example", "ANN@X.example", "cc@y.example", "hidden@", "@z.example", "x.example"],
)
def test_search_finds_a_message_by_any_recipient(admin_client, term):
    message_row(
        subject="to ann",
        cc=[{"email": "Cc@y.example", "name": "C"}],
        bcc=[{"email": "hidden@z.example", "name": ""}],
    )
    message_row(subject="to bob", to="bob@w.example")
    assert listed(admin_client, q=term) == {"to ann"}


def test_search_by_subject_our_id_and_provider_id(admin_client):
    wanted = message_row(subject="Your receipt for order 42")
    message_row(subject="Welcome")
    assert listed(admin_client, q="order 42") == {wanted.subject}
    assert listed(admin_client, q=str(wanted.pk)) == {wanted.subject}
    assert listed(admin_client, q=wanted.provider_message_id) == {wanted.subject}


def test_search_with_an_at_also_finds_idempotency_keys_and_provider_ids(admin_client):
    wanted = message_row(
        subject="keyed",
        to="someone@else.example",
        idempotency_key="welcome:ann@x.example",
        provider_message_id="<abc@mta.example>",
    )
    message_row(subject="to ann", to="ann@x.example")
    assert listed(admin_client, q=wanted.idempotency_key) == {"keyed"}
    assert listed(admin_client, q="<abc@mta.example>") == {"keyed"}
    assert listed(admin_client, q="ann@x.example") == {"to ann"}  # keys match whole, not in part


def test_recipient_search_column_follows_address_changes():
    message = message_row(to="old@x.example")
    message.to = [{"email": "New@X.example", "name": ""}]
    message.save(update_fields=["to"])
    assert Message.objects.get(pk=message.pk).recipient_emails == "new@x.example"


def _sql(queries) -> list[str]:
    return [q["sql"].upper() for q in queries]


@pytest.mark.parametrize(
    "params",
    [{}, {"status__exact": "sent"}, {"q": "ann@x.example"}, {"route_domain": "example.com"}],
)
def test_the_list_never_counts_the_table(admin_client, params):
    for _ in range(3):
        message_row()
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(URL, params).status_code == 200
    assert not [sql for sql in _sql(queries) if "COUNT(" in sql]


def test_a_page_costs_the_same_queries_for_3_or_60_messages(admin_client):
    for _ in range(3):
        message_row()
    with CaptureQueriesContext(connection) as few:
        admin_client.get(URL)
    for _ in range(57):
        message_row()
    with CaptureQueriesContext(connection) as many:
        admin_client.get(URL)
    assert len(many) == len(few)
    on_messages = [sql for sql in _sql(many) if 'FROM "DJANGO_TXMAIL_MESSAGE"' in sql]
    assert len(on_messages) == 2, on_messages  # "is there a next page" + the page itself


def test_pages_go_newer_to_older_and_the_last_one_knows_the_total(admin_client):
    start = timezone.now() - timedelta(hours=1)
    for n in range(120):
        message_row(subject=f"m{n:03}", created_at=start + timedelta(seconds=n))
    first = admin_client.get(URL)
    assert len(first.context["cl"].result_list) == 100
    assert first.context["cl"].result_list[0].subject == "m119"
    assert "more than 100 messages" in first.text and "?p=2" in first.text
    second = admin_client.get(URL, {"p": 2})
    assert [m.subject for m in second.context["cl"].result_list] == [
        f"m{n:03}" for n in range(19, -1, -1)
    ]
    assert "120 messages" in second.text and "?p=3" not in second.text
    assert "Newer" in second.text


def test_a_page_past_the_end_is_out_of_range_like_any_change_list(admin_client):
    for n in range(30):
        message_row(subject=f"m{n}")
    response = admin_client.get(URL, {"p": 2})
    assert response.status_code == 302 and response["Location"] == f"{URL}?e=1"
    first = admin_client.get(URL)
    assert len(first.context["cl"].result_list) == 30 and "30 messages" in first.text


def test_show_all_cannot_load_the_whole_outbox(admin_client):
    for _ in range(101):
        message_row()
    response = admin_client.get(URL, {"all": ""})
    assert len(response.context["cl"].result_list) == 100


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the planner's estimate is PostgreSQL's"
)
def test_the_unfiltered_list_shows_the_planners_estimate_on_postgresql(admin_client):
    for _ in range(150):
        message_row()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE django_txmail_message")
    page = admin_client.get(URL).text
    assert "about 150 messages" in page
    filtered = admin_client.get(URL, {"status__exact": "sent"}).text
    assert "more than 100 messages" in filtered


def _index_leaders(table: str) -> set[str]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {c["columns"][0] for c in constraints.values() if c["index"] and c["columns"]}


def test_every_filter_and_the_list_order_have_an_index():
    leaders = _index_leaders(Message._meta.db_table)
    for column in ("status", "provider", "route", "route_domain", "template", "created_at"):
        assert column in leaders, column
    for lookup in ("provider_message_id", "sent_at"):
        assert lookup in leaders, lookup


def test_the_event_list_never_counts_either_and_shows_the_newest_first(admin_client):
    message = message_row()
    older = event_row(message, "delivered", occurred_at=timezone.now() - timedelta(hours=1))
    newer = event_row(message, "opened")
    url = reverse("admin:django_txmail_deliveryevent_changelist")
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url, {"type__exact": "delivered"})
    assert [e.pk for e in response.context["cl"].result_list] == [older.pk]
    assert not [sql for sql in _sql(queries) if "COUNT(" in sql]
    everything = admin_client.get(url)
    assert [e.pk for e in everything.context["cl"].result_list] == [newer.pk, older.pk]
    assert "2 delivery events" in everything.text


def test_a_page_of_events_costs_the_same_queries_for_1_or_31_events(admin_client):
    url = reverse("admin:django_txmail_deliveryevent_changelist")
    event_row(message_row(), "delivered")
    with CaptureQueriesContext(connection) as few:
        admin_client.get(url)
    for _ in range(30):
        event_row(message_row(), "delivered")
    event_row(None, "bounced")
    with CaptureQueriesContext(connection) as many:
        page = admin_client.get(url)
    assert len(many) == len(few)
    assert not [sql for sql in _sql(many) if 'FROM "DJANGO_TXMAIL_MESSAGE"' in sql]
    message = page.context["cl"].result_list[1].message_id
    assert reverse("admin:django_txmail_message_change", args=[message]) in page.text


needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="pg_trgm is a PostgreSQL extension"
)
TRIGRAM_INDEX = "txmail_msg_recipients_trgm"


def _recipient_search_plan(term: str) -> str:
    """The plan of the admin's recipient search, with sequential scans priced out."""
    from django.contrib.admin.sites import site

    model_admin = site._registry[Message]
    queryset, _ = model_admin.get_search_results(None, Message.objects.all(), term)
    sql, params = queryset.order_by().query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@needs_postgresql
def test_recipient_search_uses_the_trigram_index_on_postgresql(admin_client):
    message_row(subject="to ann", to="Ann@Shop.example")
    message_row(subject="to bob", to="bob@shop.example")
    assert TRIGRAM_INDEX in _recipient_search_plan("ann@shop")
    assert listed(admin_client, q="ann@shop") == {"to ann"}
    assert listed(admin_client, q="@shop.example") == {"to ann", "to bob"}


def _trigram_migration():
    import importlib

    return importlib.import_module("django_txmail.migrations.0006_recipient_trigram_index")


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_without_the_right_to_install_pg_trgm_the_migration_passes_and_search_scans():
    from django.apps import apps

    migration = _trigram_migration()
    message_row(subject="to ann", to="ann@shop.example")
    with connection.cursor() as cursor:
        cursor.execute("DROP EXTENSION pg_trgm CASCADE")  # and the index with it
        cursor.execute("DROP ROLE IF EXISTS txmail_plain")
        cursor.execute("CREATE ROLE txmail_plain")
        cursor.execute(f"GRANT SELECT ON {Message._meta.db_table} TO txmail_plain")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET ROLE txmail_plain")
        try:
            with connection.schema_editor(atomic=False) as editor:
                migration.create_index(apps, editor)
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
                assert cursor.fetchone() is None
            assert TRIGRAM_INDEX not in _recipient_search_plan("ann@shop")
            assert [
                m.subject for m in Message.objects.filter(recipient_emails__contains="ann@")
            ] == ["to ann"]
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET ROLE")
        # Once someone with the right installs it, running the migration again adds the index.
        with connection.schema_editor(atomic=False) as editor:
            migration.create_index(apps, editor)
        assert TRIGRAM_INDEX in _recipient_search_plan("ann@shop")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            cursor.execute(f"REVOKE ALL ON {Message._meta.db_table} FROM txmail_plain")
            cursor.execute("DROP ROLE txmail_plain")
        with connection.schema_editor(atomic=False) as editor:
            migration.create_index(apps, editor)


@pytest.mark.django_db(transaction=True)
def test_the_trigram_migration_leaves_other_databases_alone():
    from django.apps import apps

    with connection.schema_editor(atomic=False) as editor:
        _trigram_migration().create_index(apps, editor)
    with connection.cursor() as cursor:
        names = connection.introspection.get_constraints(cursor, Message._meta.db_table)
    assert (TRIGRAM_INDEX in names) == (connection.vendor == "postgresql")


@pytest.mark.parametrize("page", ["99999999999999999999", str(2**63), "9" * 40])
def test_a_page_number_too_large_for_any_database_is_out_of_range_not_an_error(admin_client, page):
    message_row(subject="only")
    response = admin_client.get(URL, {"p": page})
    assert response.status_code == 302 and response["Location"] == f"{URL}?e=1"
