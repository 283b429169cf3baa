"""mailtrap: send adapter, webhook parser."""

from django_txmail.providers.mailtrap.send import MailtrapAdapter

__all__ = ["MailtrapAdapter"]
