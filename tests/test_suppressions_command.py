"""``manage.py txmail_suppressions``, and the providers' lists: Mailtrap's imported
over real HTTP from the sandbox, lifted entries removed there too."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from django_txmail import suppressions
from django_txmail.models import Suppression
from django_txmail.tracking.provider_lists import lift
from tests.conftest import use_our_backend
from txmail_sandbox import DEFAULT_MAILTRAP_API_TOKEN

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command("txmail_suppressions", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def mailtrap(txmail_sandbox, settings):
    settings.TXMAIL = {
        "PROVIDERS": {
            "mailtrap": {
                "ADAPTER": "mailtrap",
                "API_TOKEN": DEFAULT_MAILTRAP_API_TOKEN,
                "API_URI": txmail_sandbox.url,
                "ACCOUNT_ID": "1234",
                "ACCOUNT_API_URI": txmail_sandbox.url,  # https://mailtrap.io in production
                "SANDBOX": True,
            }
        },
        "BASE_URL": "https://mail.example.com",
    }
    use_our_backend(settings)
    return txmail_sandbox


# --- list, add, remove ---------------------------------------------------------------


def test_add_list_and_remove(db):
    assert "added" in run("add", "Ann@Example.com", "--note", "asked by phone")
    assert "already suppressed" in run("add", "ann@example.com")
    run("add", "bob@example.com", "--stream", "broadcast", "--reason", "unsubscribe")
    listed = run("list").splitlines()
    assert [line.split("\t")[:3] for line in listed] == [
        ["ann@example.com", "*", "manual"],
        ["bob@example.com", "broadcast", "unsubscribe"],
    ]
    assert run("list", "--reason", "unsubscribe").count("\n") == 1
    assert "removed" in run("remove", "ANN@example.com")
    assert "not suppressed" in run("remove", "ann@example.com")
    assert list(Suppression.objects.values_list("address", flat=True)) == ["bob@example.com"]


def test_add_refuses_a_bad_address_or_stream(db):
    with pytest.raises(CommandError, match="not an email address"):
        run("add", "nobody")
    with pytest.raises(CommandError, match="newsletters"):
        run("add", "a@example.com", "--stream", "newsletters")


# --- CSV -----------------------------------------------------------------------------


def test_export_then_import_round_trips(db, tmp_path):
    suppressions.suppress("a@example.com", reason="hard_bounce", note="550 user unknown")
    suppressions.suppress("b@example.com", stream="broadcast", reason="unsubscribe")
    path = tmp_path / "list.csv"
    run("export", str(path))
    assert path.read_text().splitlines()[0] == "address,stream,reason,note"
    Suppression.objects.all().delete()
    assert "Imported 2 new entries" in run("import", str(path))
    assert set(Suppression.objects.values_list("address", "stream", "reason", "note")) == {
        ("a@example.com", "", "hard_bounce", "550 user unknown"),
        ("b@example.com", "broadcast", "unsubscribe", ""),
    }
    assert "Imported 0 new entries (2 already suppressed)" in run("import", str(path))


def test_an_import_with_bad_rows_names_their_lines_and_imports_nothing(db, tmp_path):
    path = tmp_path / "list.csv"
    path.write_text(
        "address,stream,reason,note\n"
        "Ann@Example.com,,,\n"
        "not-an-address,,,\n"
        "bob@example.com,newsletters,,\n"
        "carl@example.com,,bored,\n"
        "dan@bücher.example,broadcast,complaint,\n"
    )
    err = io.StringIO()
    with pytest.raises(CommandError, match="3 bad row"):
        call_command("txmail_suppressions", "import", str(path), stdout=io.StringIO(), stderr=err)
    assert [line.split(":")[0] for line in err.getvalue().splitlines()] == [
        "line 3",
        "line 4",
        "line 5",
    ]
    assert not Suppression.objects.exists()
    call_command(
        "txmail_suppressions",
        "import",
        str(path),
        "--skip-bad",
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    assert sorted(Suppression.objects.values_list("address", flat=True)) == [
        "ann@example.com",
        "dan@xn--bcher-kva.example",
    ]


# --- sync and lift against the sandbox's Mailtrap ------------------------------------------


def test_sync_imports_mailtraps_list_maps_reasons_and_streams_and_is_idempotent(mailtrap):
    mailtrap.add_mailtrap_suppression("Ann@X.example", "hard bounce", "transactional")
    mailtrap.add_mailtrap_suppression("bob@x.example", "spam complaint", "transactional")
    mailtrap.add_mailtrap_suppression("carl@x.example", "unsubscription", "bulk")
    mailtrap.add_mailtrap_suppression("dan@x.example", "manual import", "bulk")
    assert "4 listed, 4 added" in run("sync", "mailtrap")
    rows = set(Suppression.objects.values_list("address", "stream", "reason", "provider"))
    assert rows == {
        ("ann@x.example", "transactional", "hard_bounce", "mailtrap"),
        ("bob@x.example", "transactional", "complaint", "mailtrap"),
        ("carl@x.example", "broadcast", "unsubscribe", "mailtrap"),
        ("dan@x.example", "broadcast", "manual", "mailtrap"),
    }
    ids = {e["email"]: e["id"] for e in mailtrap.mailtrap_suppressions}
    assert (
        Suppression.objects.get(address="ann@x.example").provider_suppression_id
        == ids["ann@x.example"]
    )
    assert "4 listed, 0 added, 0 linked" in run("sync", "mailtrap")
    assert Suppression.objects.count() == 4


def test_sync_links_an_entry_we_already_had(mailtrap):
    suppressions.suppress("ann@x.example", stream="transactional", reason="hard_bounce")
    mailtrap.add_mailtrap_suppression("ann@x.example", "hard bounce")
    assert "1 listed, 0 added, 1 linked" in run("sync", "mailtrap")
    assert Suppression.objects.get().provider == "mailtrap"


def test_sync_needs_the_account_id(mailtrap, settings):
    del settings.TXMAIL["PROVIDERS"]["mailtrap"]["ACCOUNT_ID"]
    with pytest.raises(CommandError, match="ACCOUNT_ID"):
        run("sync", "mailtrap")


def test_lifting_an_imported_entry_removes_it_at_mailtrap_too(mailtrap):
    mailtrap.add_mailtrap_suppression("ann@x.example", "hard bounce")
    mailtrap.add_mailtrap_suppression("bob@x.example", "hard bounce")
    run("sync", "mailtrap")
    assert "and 1 at the provider" in run("remove", "ann@x.example")
    assert [e["email"] for e in mailtrap.mailtrap_suppressions] == ["bob@x.example"]
    assert list(Suppression.objects.values_list("address", flat=True)) == ["bob@x.example"]


def test_lifting_an_entry_from_a_mailtrap_event_finds_it_there_by_address(mailtrap):
    from django.utils import timezone

    from django_txmail.models import DeliveryEvent

    event = DeliveryEvent.objects.create(
        provider="mailtrap",
        type="bounced",
        provider_type="bounce",
        provider_event_id="e1",
        recipient="ann@x.example",
        occurred_at=timezone.now(),
        raw={},
        ingest_batch="00000000-0000-0000-0000-000000000001",
    )
    entry, _ = suppressions.suppress(
        "ann@x.example", stream="transactional", reason="hard_bounce", event=event
    )
    mailtrap.add_mailtrap_suppression("ann@x.example", "hard bounce", "transactional")
    mailtrap.add_mailtrap_suppression("ann@x.example", "unsubscription", "bulk")
    assert lift(entry) == 1
    assert [(e["email"], e["sending_stream"]) for e in mailtrap.mailtrap_suppressions] == [
        ("ann@x.example", "bulk")
    ]
    assert not Suppression.objects.exists()
