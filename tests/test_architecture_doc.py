"""docs/architecture.md shows the transition table the code enforces."""

from __future__ import annotations

import pathlib

from django_txmail.models import Message
from django_txmail.outbox.states import NEW, TRANSITIONS, Cause

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "architecture.md"


def documented_table() -> dict[str, tuple[set[str], set[str]]]:
    text = DOC.read_text()
    start = text.index("| cause | from | to | note |")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cause, sources, targets, _ = (cell.strip() for cell in line.strip("|").split("|"))
        rows[cause] = (
            {s.strip() for s in sources.split(",")},
            {t.strip() for t in targets.split(",")},
        )
    return rows


def test_the_documented_transitions_are_the_enforced_ones():
    everything = set(Message.Status.values)
    expected = {}
    for cause, transition in TRANSITIONS.items():
        sources = {"(new)" if s == NEW else s for s in transition.sources}
        if sources == everything:
            sources = {"any status"}
        elif len(everything - sources) == 1:  # "any status but suppressed"
            sources = {f"any status but {(everything - sources).pop()}"}
        expected[cause.value] = (sources, set(transition.targets))
    assert documented_table() == expected
    assert set(expected) == {c.value for c in Cause}
