"""mailerlogic: send adapter, webhook parser."""

from django_txmail.providers.mailerlogic.send import MailerLogicAdapter

__all__ = ["MailerLogicAdapter"]
