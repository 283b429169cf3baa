"""A message's HTML part, shown safely inside the admin.

Mail HTML is written by whoever sent it (and, through templates, partly by
whoever signed up): it must never run in the admin's origin. So the HTML is

1. sanitised with nh3 — no scripts, event handlers, forms, frames or
   ``javascript:`` links; layout tags, inline styles and ``<style>`` stay so
   the message still looks like itself;
2. stripped of remote images: loading them would tell the sender (or a
   tracking service) that someone opened the message, from the admin's
   address. Their ``alt`` text stays; ``data:`` images are kept;
3. shown in an ``<iframe sandbox srcdoc=...>`` with no ``allow-scripts`` and
   no ``allow-same-origin`` (an opaque origin: no cookies, no DOM access to
   the admin), under a Content-Security-Policy that forbids any network
   load, in case a stylesheet still names a remote URL.
"""

from __future__ import annotations

from dataclasses import dataclass

import nh3
from django.utils.html import format_html

_TAGS = nh3.ALLOWED_TAGS | {"style", "font", "body", "html", "head"}
_ATTRIBUTES = {
    "*": {"style", "class", "id", "align", "valign", "dir", "lang", "title", "width", "height"},
    "a": {"href", "name"},
    "img": {"src", "alt", "border"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "bgcolor"},
    "td": {"colspan", "rowspan", "bgcolor", "nowrap"},
    "th": {"colspan", "rowspan", "bgcolor", "scope"},
    "tr": {"bgcolor"},
    "body": {"bgcolor"},
}
#: Nothing the preview shows may fetch anything from the network.
_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src 'none'; "
    "form-action 'none'"
)


@dataclass(frozen=True)
class Preview:
    html: str
    remote_images: int


def sanitise(html: str) -> Preview:
    """``html`` cleaned for display, and how many remote images were taken out."""
    blocked = 0

    def keep(tag: str, attribute: str, value: str) -> str | None:
        nonlocal blocked
        if tag == "img" and attribute == "src" and not value.lower().startswith("data:"):
            blocked += 1
            return None
        return value

    cleaned = nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "title"},
        attributes=_ATTRIBUTES,
        attribute_filter=keep,
        url_schemes={"http", "https", "mailto", "tel", "data"},
        link_rel="noopener noreferrer",
    )
    return Preview(cleaned, blocked)


def preview_frame(html: str):
    """The sandboxed iframe showing ``html``, with a note about blocked images."""
    preview = sanitise(html)
    document = (
        f'<!doctype html><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">{preview.html}'
    )
    note = ""
    if preview.remote_images:
        note = format_html(
            '<p class="txmail-preview-note">{} remote image(s) not loaded: they would tell '
            "the sender the message was opened, from here.</p>",
            preview.remote_images,
        )
    return format_html(
        '{}<iframe class="txmail-preview" title="HTML part" sandbox="" '
        'referrerpolicy="no-referrer" srcdoc="{}"></iframe>',
        note,
        document,
    )
