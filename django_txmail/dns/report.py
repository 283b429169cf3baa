"""How ``txmail_verify_domains`` shows a :class:`DomainReport`: a table for people, JSON
for machines.

One table per domain, a row per record (status mark, what it is for, type,
name, expected, found), and under every row that is not ✓ the problem and its
fix on one line each. Long values (DKIM keys) are shortened in the table;
the JSON has them whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from django_txmail.dns.records import ERROR, FAILED, OK, PENDING, WARNING, RecordCheck
from django_txmail.dns.verify import DomainReport

MARKS = {OK: "✓", FAILED: "✗", WARNING: "!", ERROR: "?", PENDING: "…"}
LEGEND = "✓ ok   ✗ fix it   ! advice   ? could not check   … waiting for the provider"
_WIDTHS = (1, 20, 34, 36, 36)


def render_text(reports: Iterable[DomainReport]) -> str:
    """The tables, one per domain, then the legend."""
    blocks = [_domain_block(report) for report in reports]
    return "\n\n".join([*blocks, LEGEND]) + "\n"


def render_json(reports: Iterable[DomainReport]) -> str:
    reports = list(reports)
    data = {
        "passed": all(report.passed for report in reports),
        "domains": [report.as_dict() for report in reports],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _domain_block(report: DomainReport) -> str:
    verdict = "all required records pass" if report.passed else "needs attention"
    lines = [
        f"{report.domain} ({report.provider}): {report.status}, {verdict}",
        f"  asked {report.nameserver} at {report.checked_at:%Y-%m-%d %H:%M:%S %Z}",
    ]
    lines += [f"  ✗ {problem}" for problem in report.problems]
    if report.checks:
        lines.append(_row(("", "record", "name", "expected", "found")))
        for check in report.checks:
            lines.extend(_check_lines(check))
    return "\n".join(lines)


def _check_lines(check: RecordCheck) -> list[str]:
    record = check.record
    label = f"{record.purpose} {record.type}" + ("" if record.required else " (opt)")
    found = "; ".join(check.found) if check.found else "(none)"
    lines = [_row((MARKS[check.status], label, record.host, record.value, found))]
    indent = " " * (2 + _WIDTHS[0] + 1)
    if check.problem:
        lines.append(f"{indent}{check.problem}")
    if check.fix and check.status != OK:
        lines.append(f"{indent}Fix: {check.fix}")
    if check.detail:
        lines.append(f"{indent}{check.detail}")
    return lines


def _row(cells: tuple[str, ...]) -> str:
    parts = [_cell(text, width) for text, width in zip(cells, _WIDTHS, strict=True)]
    return ("  " + " ".join(parts)).rstrip()


def _cell(text: str, width: int) -> str:
    text = " ".join(text.split())
    if len(text) > width:
        keep = width - 1
        text = text[: keep - keep // 3] + "…" + text[-(keep // 3) :]
    return text.ljust(width)
