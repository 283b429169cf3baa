"""The numbers at a glance: mail per day for 30 days, and each sending domain's health.

Three GROUP BY queries, whatever the number of days or messages:

* messages handed to the provider per day (``Message.sent_at``);
* delivered / bounced / complained delivery events per day (per recipient,
  as providers report them);
* per sending domain, messages sent in the period and how many of them
  ended bounced or complained — the rates providers and mailbox providers
  judge a sender by. Past ``TXMAIL["BOUNCE_WARNING_PERCENT"]`` (4 %) or
  ``TXMAIL["COMPLAINT_WARNING_PERCENT"]`` (0.1 %) the domain is flagged:
  beyond those, providers throttle or suspend sending.

The chart is an inline SVG drawn on the server: no JavaScript, no CDN,
nothing for a strict Content-Security-Policy to block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from django_txmail.conf import get_settings
from django_txmail.models import DeliveryEvent, Message, Suppression

DAYS = 30
SERIES = (
    ("sent", "#417690"),
    ("delivered", "#2e7d32"),
    ("bounced", "#c62828"),
    ("complained", "#ef6c00"),
    ("suppressed", "#6a1b9a"),  # addresses added to the suppression list
)
EVENT_TYPES = ("delivered", "bounced", "complained")


@dataclass
class Day:
    day: date
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    suppressed: int = 0


@dataclass
class DomainHealth:
    domain: str
    sent: int
    bounced: int
    complained: int
    warnings: list[str] = field(default_factory=list)

    @property
    def bounce_percent(self) -> float:
        return 100 * self.bounced / self.sent if self.sent else 0.0

    @property
    def complaint_percent(self) -> float:
        return 100 * self.complained / self.sent if self.sent else 0.0


def _start(days: int) -> datetime:
    first = timezone.localdate() - timedelta(days=days - 1)
    return timezone.make_aware(datetime.combine(first, time()))


def daily(days: int = DAYS, stream: str = "") -> list[Day]:
    """Sent messages, delivered/bounced/complained events and suppressions added per day,
    oldest first; of one stream, given one (its suppressions and every-stream ones)."""
    start = _start(days)
    dates = [start.date() + timedelta(days=n) for n in range(days)]
    table = {day: Day(day) for day in dates}
    messages = Message.objects.filter(stream=stream) if stream else Message.objects.all()
    sent = (
        messages.filter(sent_at__gte=start)
        .annotate(day=TruncDate("sent_at"))
        .values("day")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in sent:
        if row["day"] in table:
            table[row["day"]].sent = row["n"]
    events = DeliveryEvent.objects.filter(occurred_at__gte=start, type__in=EVENT_TYPES)
    events = (
        (events.filter(message__stream=stream) if stream else events)
        .annotate(day=TruncDate("occurred_at"))
        .values("day", "type")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in events:
        if row["day"] in table:
            setattr(table[row["day"]], row["type"], row["n"])
    added = Suppression.objects.filter(created_at__gte=start)
    added = (
        (added.filter(stream__in=[stream, ""]) if stream else added)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in added:
        if row["day"] in table:
            table[row["day"]].suppressed = row["n"]
    return list(table.values())


def domain_health(days: int = DAYS, stream: str = "") -> list[DomainHealth]:
    """Bounce and complaint rates of each sending domain over the period, busiest first
    (of one stream's mail, given one)."""
    config = get_settings()
    messages = Message.objects.filter(stream=stream) if stream else Message.objects.all()
    rows = (
        messages.filter(sent_at__gte=_start(days), route=Message.Route.DOMAIN)
        .values("route_domain")
        .annotate(
            sent=Count("pk"),
            bounced=Count("pk", filter=Q(status=Message.Status.BOUNCED)),
            complained=Count("pk", filter=Q(status=Message.Status.COMPLAINED)),
        )
        .order_by("-sent", "route_domain")
    )
    health = []
    for row in rows:
        domain = DomainHealth(row["route_domain"], row["sent"], row["bounced"], row["complained"])
        if domain.bounce_percent > config.bounce_warning_percent:
            domain.warnings.append(
                f"Bounce rate {domain.bounce_percent:.1f} % is above "
                f"{config.bounce_warning_percent:g} %: remove addresses that bounce hard "
                "and check how they were collected, or the provider may suspend sending."
            )
        if domain.complaint_percent > config.complaint_warning_percent:
            domain.warnings.append(
                f"Complaint rate {domain.complaint_percent:.2f} % is above "
                f"{config.complaint_warning_percent:g} %: make sure recipients asked for "
                "this mail and can unsubscribe, or mailbox providers will file it as spam."
            )
        health.append(domain)
    return health


@dataclass
class Chart:
    """What the SVG template draws: one polyline and its dots per series, axes, labels."""

    width: int
    height: int
    left: int
    bottom: int
    series: list[dict]
    y_ticks: list[tuple[float, int]]
    x_labels: list[tuple[float, str]]
    top: int = 12


def _ceiling(value: int) -> int:
    """A round top for the y axis: 1, 2, 5 times a power of ten, at least ``value``."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if factor * step >= value:
                return factor * step
        step *= 10


def chart(days: list[Day], width: int = 760, height: int = 260) -> Chart:
    left, right, top, bottom = 48, 36, 12, height - 28
    highest = _ceiling(max([1, *(getattr(d, name) for d in days for name, _ in SERIES)]))
    step = (width - left - right) / max(1, len(days) - 1)

    def y(value: int) -> float:
        return round(bottom - (bottom - top) * value / highest, 1)

    series = []
    for name, colour in SERIES:
        dots = [
            (round(left + i * step, 1), y(value), f"{d.day:%b %d}: {value} {name}")
            for i, d in enumerate(days)
            for value in [getattr(d, name)]
        ]
        series.append(
            {
                "name": name,
                "colour": colour,
                "points": " ".join(f"{x},{y_}" for x, y_, _ in dots),
                "dots": dots,
                "total": sum(getattr(d, name) for d in days),
            }
        )
    ticks = [(y(value), value) for value in range(0, highest + 1, max(1, highest // 5))]
    labels = [
        (round(left + i * step, 1), f"{d.day:%b %d}")
        for i, d in enumerate(days)
        if i % 5 == 0 or i == len(days) - 1
    ]
    return Chart(width, height, left, bottom, series, ticks, labels, top)
