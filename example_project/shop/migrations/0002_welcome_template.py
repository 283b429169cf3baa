"""The shop's welcome mail as a stored template, in English and German.

Edit it in the admin (Django txmail › Templates); ``txmail_demo`` sends it.
"""

from django.db import migrations

HTML = """<html><head><style>
  h1 { color: #264b5d; font-family: sans-serif }
  .cta { background: #417690; color: #fff; padding: 8px 14px; text-decoration: none }
</style></head><body>
<h1>Welcome, {{ name }}!</h1>
<p>Thanks for signing up at Example Shop.</p>
<p><a class="cta" href="{{ shop_url }}">Start shopping</a></p>
</body></html>"""

HTML_DE = """<html><head><style>h1 { color: #264b5d }</style></head><body>
<h1>Willkommen, {{ name }}!</h1>
<p>Danke für Ihre Anmeldung bei Example Shop.</p>
<p><a href="{{ shop_url }}">Jetzt einkaufen</a></p>
</body></html>"""


def create(apps, schema_editor):
    Template = apps.get_model("django_txmail", "Template")
    TemplateVariant = apps.get_model("django_txmail", "TemplateVariant")
    welcome, _ = Template.objects.get_or_create(
        slug="welcome",
        defaults={
            "name": "Welcome",
            "description": "Sent once an account is created.",
            "subject": "Welcome to Example Shop, {{ name }}",
            "html": HTML,
            "inline_css": True,
            "sample_vars": {"name": "Ann", "shop_url": "https://shop.example.com/"},
        },
    )
    TemplateVariant.objects.get_or_create(
        template=welcome,
        language="de",
        defaults={"subject": "Willkommen bei Example Shop, {{ name }}", "html": HTML_DE},
    )


def remove(apps, schema_editor):
    apps.get_model("django_txmail", "Template").objects.filter(slug="welcome").delete()


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_sending_setup"), ("django_txmail", "0002_templates")]
    operations = [migrations.RunPython(create, remove)]
