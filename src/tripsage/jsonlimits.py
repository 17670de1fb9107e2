"""JSON from outside (function bodies, realtime frames), parsed with a nesting limit.

`json.loads` recurses once per level: 100,000 `[` raise RecursionError (a 500 where a 400 belongs), and a document just
under the interpreter's limit parses but breaks whatever recurses over it next. `loads` refuses a document nested
deeper than MAX_DEPTH with `TooDeep` (a ValueError) before parsing it.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64  # levels of arrays and objects; far beyond any payload we accept, far below the recursion limit
TOO_DEEP = "json_too_deep"  # the error code answered for it

# A string (skipped whole, so brackets inside it do not count) or a bracket.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class TooDeep(ValueError):
    """The document is nested deeper than the limit."""

    code = TOO_DEEP


def depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text` (which need not be valid JSON)."""
    deepest = level = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            level += 1
            deepest = max(deepest, level)
        elif token in "]}":
            level -= 1
    return deepest


def loads(data: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads(data)`; TooDeep when nested deeper than `max_depth` (ValueError for anything else invalid)."""
    text = data if isinstance(data, str) else bytes(data).decode("utf-8")
    # Only a document with more openings than the limit can be too deep: most skip the scan.
    if text.count("[") + text.count("{") > max_depth and depth(text) > max_depth:
        raise TooDeep(f"JSON nested deeper than {max_depth} levels")
    return json.loads(text)
