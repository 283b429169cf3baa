"""Send a recorded message again: *resend* it as a new message, or *retry* it now.

* ``resend`` records a copy of a message as a new ``Message`` — same
  route, addresses, content and attachments (copied in storage, so cleaning
  up one never breaks the other), a new idempotency key, linked to the
  original by ``resent_from`` — and delivers it the way the backend
  delivers any new message (``TXMAIL["DELIVERY"]``: now, or a task). The
  provider sees a new message, so the recipient gets it again: that is the
  point of resending (a lost receipt, a bounce that is fixed).
* ``retry`` makes one more attempt at the *same* message now: same
  idempotency key, so a provider that honours it (Nylas) and already has
  it does not send it twice; one without (Mailtrap, MailerLogic) may. The
  attempt counter keeps counting (the attempt log stays true): a message
  that failed permanently after a few attempts gets the retries it has
  left; one that used them all up gets this one attempt.

Both honour the suppression list: a resend leaves out the recipients
suppressed since (and is recorded "suppressed" when none is left); a retry
of a message whose every recipient is suppressed since marks it
"suppressed" instead of sending it.

The admin's actions and ``manage.py txmail_resend`` both go through here.
"""

from __future__ import annotations

from django.db import router, transaction
from django.db.models import OuterRef, QuerySet, Subquery

from django_txmail import suppressions
from django_txmail.conf import get_settings
from django_txmail.exceptions import CannotResend, CannotRetry
from django_txmail.models import Message
from django_txmail.outbound_email import OutboundEmail
from django_txmail.outbox import states
from django_txmail.outbox.dispatch import (
    announce_suppressed,
    deliver_quietly,
    delivery_mode,
    hand_over,
)
from django_txmail.outbox.store import load, plan, record
from django_txmail.routing import ResolvedRoute
from django_txmail.sending.attempt import Sender, route_of


def with_first_resend(queryset: QuerySet[Message]) -> QuerySet[Message]:
    """``queryset`` annotated with ``first_resend`` (the id of each message's first copy, or None).

    ``resend_refusal`` uses it instead of one query per message, so a list
    of messages to confirm costs one query however long it is.
    """
    first = Message.objects.filter(resent_from=OuterRef("pk")).order_by("created_at", "pk")
    return queryset.annotate(first_resend=Subquery(first.values("pk")[:1]))


def resend_refusal(message: Message, *, force: bool = False) -> str:
    """Why ``message`` cannot be resent, or "" when it can.

    A cancelled message was stopped on purpose: it is only sent with ``force``.
    """
    # Not handed to the provider yet: resending would make a second copy of a
    # message still on its way (cancel it first, or wait).
    if message.status in states.NOT_SENT_YET:
        return (
            f"Message {message.pk} is {message.status} and has not been sent yet; "
            "cancel it first if it should not go, or wait for it."
        )
    if force:
        return ""
    if message.status == Message.Status.CANCELLED:
        return (
            f"Message {message.pk} was cancelled, so it was never sent; if it should go after "
            f"all, resend it with force (manage.py txmail_resend --id {message.pk} --force)."
        )
    if hasattr(message, "first_resend"):
        earlier = message.first_resend
    else:
        earlier = message.resends.order_by("created_at", "pk").values_list("pk", flat=True).first()
    if earlier is not None:
        return (
            f"Message {message.pk} was already resent as {earlier}; "
            "resend that one, or force it to send another copy."
        )
    return ""


def resend(message: Message, *, force: bool = False, sender: Sender | None = None) -> Message:
    """Record ``message`` again as a new message and deliver it; return the new message.

    Raises ``CannotResend`` when it has not been sent yet, or was cancelled
    or already resent (unless ``force``). A delivery that fails does not raise: the
    new message records it (status "failed" and ``last_error``), like any
    message sent in the background.
    """
    by_task, after_commit = delivery_mode()
    using = router.db_for_write(Message)
    with transaction.atomic(using=using):
        # Locked, so two people resending at once make one copy, not two.
        original = (
            Message.objects.select_for_update(of=("self",))
            .select_related("sending_domain", "grant")
            .get(pk=message.pk)
        )
        if refusal := resend_refusal(original, force=force):
            raise CannotResend(refusal)
        email = load(original)
        email.message_id, email.idempotency_key, email.send_at = None, "", None
        resolved = ResolvedRoute(
            route_of(original),
            get_settings().account(original.provider),
            grant=original.grant,
            sending_domain=original.sending_domain,
        )
        try:
            planned = plan(
                email, claim=not (by_task or after_commit), suppressed=_suppressed(email)
            )
            copy, _ = record(planned, resolved)
        except OSError as exc:
            raise CannotResend(
                f"The stored attachments of message {original.pk} cannot be read "
                f"({exc.strerror or exc}); it cannot be resent as recorded."
            ) from exc
        copy.resent_from = original
        copy.template = original.template
        copy.template_version = original.template_version
        copy.template_language = original.template_language
        copy.save(
            update_fields=["resent_from", "template", "template_version", "template_language"]
        )
    if planned.suppressed:
        announce_suppressed([(copy, planned.suppressed)])
    if copy.status == Message.Status.SUPPRESSED:
        return copy
    if not hand_over(copy, by_task=by_task, after_commit=after_commit):
        deliver_quietly(copy, sender, claimed=True)
    return copy


def _suppressed(email: OutboundEmail) -> dict[str, str]:
    """The recipients of ``email`` on the suppression list of its stream (address → reason)."""
    addresses = {a.email.lower() for a in email.recipients}
    found = suppressions.lookup(addresses, [email.stream])
    return {
        address: reason
        for address in addresses
        if (reason := suppressions.reason_for(found, address, email.stream))
    }


def retry(message: Message, *, sender: Sender | None = None) -> Message:
    """Make one more attempt at a failed (or retry-waiting) ``message`` now.

    Raises ``CannotRetry`` when the message is neither failed nor queued for
    a retry. Returns the message as it is after the attempt (or once handed
    to a task).
    """
    by_task, after_commit = delivery_mode()  # raises before the message is touched
    # Every recipient suppressed since: it is never sent (the request cannot change
    # between attempts, so a recipient suppressed since is still sent to otherwise).
    if message.status in states.TRANSITIONS[states.Cause.SUPPRESS].sources:
        email = load(message)
        if email.recipients and {a.email.lower() for a in email.recipients} <= set(
            _suppressed(email)
        ):
            if states.suppress(message):
                return message
    # One conditional UPDATE: a worker claiming the message at the same time wins cleanly.
    moved = states.retry_now(message)
    message.refresh_from_db()
    if not moved:
        raise CannotRetry(
            f"Message {message.pk} is {message.status}; only failed messages and messages "
            "waiting for a retry can be retried."
        )
    if not hand_over(message, by_task=by_task, after_commit=after_commit):
        deliver_quietly(message, sender)
        message.refresh_from_db()
    return message
