"""Drop three single-column indexes of Message that composite indexes already cover.

``provider``, ``status`` and ``template`` each lead a composite index
(``txmail_msg_provider_new``, ``txmail_msg_due`` and ``txmail_msg_status_new``,
``txmail_msg_template_new``), which serves any filter on the column alone. Every
INSERT, and every UPDATE that changes the status, paid for three more index
entries (on PostgreSQL a status change never is a HOT update).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("django_txmail", "0011_api_send_permission"),
    ]

    operations = [
        migrations.AlterField(
            model_name="message",
            name="provider",
            field=models.CharField(max_length=64),
        ),
        migrations.AlterField(
            model_name="message",
            name="status",
            field=models.CharField(
                choices=[
                    ("queued", "queued"),
                    ("scheduled", "scheduled"),
                    ("sending", "sending"),
                    ("sent", "sent"),
                    ("delivered", "delivered"),
                    ("deferred", "deferred"),
                    ("bounced", "bounced"),
                    ("complained", "complained"),
                    ("rejected", "rejected"),
                    ("failed", "failed"),
                    ("cancelled", "cancelled"),
                    ("suppressed", "suppressed"),
                ],
                default="queued",
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="message",
            name="template",
            field=models.CharField(
                blank=True,
                help_text="Slug of the stored template that produced the content.",
                max_length=100,
            ),
        ),
    ]
