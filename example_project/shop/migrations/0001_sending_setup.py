"""The example shop's sending setup: its domain and one connected mailbox."""

from django.db import migrations


def create(apps, schema_editor):
    SendingDomain = apps.get_model("django_txmail", "SendingDomain")
    Grant = apps.get_model("django_txmail", "Grant")
    SendingDomain.objects.get_or_create(name="example.com", provider="nylas")
    Grant.objects.get_or_create(
        provider="nylas", grant_id="demo-grant-alice", defaults={"email": "alice@example.org"}
    )


def remove(apps, schema_editor):
    apps.get_model("django_txmail", "SendingDomain").objects.filter(name="example.com").delete()
    apps.get_model("django_txmail", "Grant").objects.filter(grant_id="demo-grant-alice").delete()


class Migration(migrations.Migration):
    dependencies = [("django_txmail", "0001_initial")]
    operations = [migrations.RunPython(create, remove)]
