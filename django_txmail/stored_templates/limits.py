"""Budgets for one render of a stored template: CPU time and output size.

Stored templates are written by people who are not developers (and a
template is only text in a table), so a render must not be able to take a
server down: two nested loops over a long padded string run for minutes,
and a loop of large padded values fills gigabytes. Within :func:`budget`,

* every node of the template (``instrument()`` wraps each one, in included
  and extended layouts too) and every loop iteration checks the CPU time the
  render has used;
* every node's output counts against the size budget once (what it adds to
  its children's output, so nested tags are not counted twice);
* the filters that make text longer than their input (``ljust``,
  ``rjust``, ``center``, ``stringformat``, ``floatformat``, ``add``,
  ``join``: see ``builtins.py``) reserve the size before they run, so one
  call cannot allocate past the budget either.

Either budget running out raises ``TemplateError`` naming the limit and
its setting. This module, like ``strict.py``, depends on how Django's
template engine renders (``Node.render``); it is pinned down by
``tests/test_template_limits.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.template.base import Node
from django.template.base import Template as CompiledTemplate

from django_txmail.exceptions import TemplateError


class Budget:
    """What one render may still spend: CPU seconds and characters of output."""

    def __init__(self, seconds: float, size: int) -> None:
        self.seconds = seconds
        self.size = size
        self.deadline = time.thread_time() + seconds
        self.used = 0
        self._children: list[int] = []

    def tick(self) -> None:
        if time.thread_time() > self.deadline:
            raise TemplateError(
                f"rendering took more than {self.seconds:g} s of CPU time, the limit "
                "TXMAIL['TEMPLATE_TIME_LIMIT'] sets; make its loops shorter."
            )

    def reserve(self, size: int, what: str) -> None:
        """Refuse to make ``size`` more characters when they would not fit."""
        if self.used + size > self.size:
            raise TemplateError(
                f"{what} would make the output longer than {self.size} characters, the limit "
                "TXMAIL['TEMPLATE_MAX_SIZE'] sets."
            )

    def render(self, render: Any, context: Any) -> str:
        self.tick()
        self._children.append(0)
        try:
            output = render(context)
        finally:
            children = self._children.pop()
        size = len(output)
        # Counted once: what this node added to its children's output.
        self.reserve(max(size - children, 0), "the template")
        self.used += max(size - children, 0)
        if self._children:
            self._children[-1] += size
        return output


_current: ContextVar[Budget | None] = ContextVar("txmail_template_budget", default=None)


@contextmanager
def budget(seconds: float, size: int) -> Iterator[Budget]:
    """Render within ``seconds`` of CPU time and ``size`` characters of output."""
    token = _current.set(Budget(seconds, size))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def tick() -> None:
    """Check the time budget of the render under way, if any (once per loop iteration)."""
    current = _current.get()
    if current is not None:
        current.tick()


def reserve(size: int, what: str) -> None:
    """Check ``size`` more characters against the render under way, if any."""
    current = _current.get()
    if current is not None:
        current.reserve(size, what)


def instrument(template: CompiledTemplate) -> CompiledTemplate:
    """Make every node of ``template`` render within the current budget (once per template)."""
    for node in template.nodelist.get_nodes_by_type(Node):
        if "render" not in vars(node):
            node.render = _budgeted(node.render)
    return template


def _budgeted(render: Any) -> Any:
    def budgeted_render(context: Any) -> str:
        current = _current.get()
        if current is None:
            return render(context)
        return current.render(render, context)

    return budgeted_render
