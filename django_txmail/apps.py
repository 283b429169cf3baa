from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TxMailConfig(AppConfig):
    name = "django_txmail"
    label = "django_txmail"
    verbose_name = _("Transactional mail")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_txmail import checks  # noqa: F401  (registers the system checks)
