"""Error messages built from data stay short: what they list is capped."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MAX_ITEMS = 20
"""Most values an error message lists."""
MAX_CHARS = 300
"""Most characters an error message gives to one list of values (or one value)."""


def preview(values: Iterable[Any], limit: int = MAX_ITEMS, max_chars: int = MAX_CHARS) -> str:
    """``values`` as a Python-style list for a message: at most ``limit`` of them and ``max_chars`` characters.

    Each value is shown with ``repr``, long ones cut; what is left out is counted, so the
    message says how much there was (``['a', 'b', ... and 1,204 more]``).
    """
    items = list(values)
    shown: list[str] = []
    length = 0
    for item in items[:limit]:
        text = clip(repr(item), max_chars // 4)
        if shown and length + len(text) > max_chars:
            break
        shown.append(text)
        length += len(text) + 2
    rest = len(items) - len(shown)
    return "[" + ", ".join(shown) + (f", ... and {rest:,} more" if rest else "") + "]"


def clip(text: str, limit: int = MAX_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"
