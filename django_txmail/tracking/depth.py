"""How deeply a webhook body nests, measured before it is parsed.

Python's JSON decoder recurses once per level: a body nested 100,000 deep
exhausts the stack while parsing (a 500, which providers retry forever),
and one a little under the interpreter's limit parses, is stored, and then
breaks every page that decodes it again. No provider sends anything
deeper than a handful of levels, so a signed body nested deeper than
:data:`MAX_JSON_DEPTH` is refused before any parser sees it.

The count runs at C speed: strings are cut out (a bracket inside a string
does not nest), the remaining brackets become +1 and -1, and the deepest
point is the largest running sum. It reads any body, JSON or not, and JSON
Lines alike.
"""

from __future__ import annotations

import re
from array import array
from itertools import accumulate

#: The deepest nesting of objects and arrays a webhook body may have.
MAX_JSON_DEPTH = 64

# A JSON string, possessively (no backtracking), ending at its closing quote or at
# the end of the body, so an unterminated string costs one pass, not one per quote.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.?)*+(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # signed bytes: +1, +1, -1, -1


def nesting_depth(body: bytes) -> int:
    """The deepest nesting of ``[`` and ``{`` in ``body``, outside strings."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(0, max(accumulate(array("b", brackets.translate(_STEPS)))))


def too_deep(body: bytes) -> bool:
    """Whether ``body`` nests deeper than :data:`MAX_JSON_DEPTH`."""
    return nesting_depth(body) > MAX_JSON_DEPTH
