"""Error messages built from data stay short."""

from __future__ import annotations

from rnnzoo.errors import clip, preview


def test_preview_lists_a_few_values_and_counts_the_rest():
    assert preview(["a", "b"]) == "['a', 'b']"
    assert preview(range(100), limit=3) == "[0, 1, 2, ... and 97 more]"
    assert preview([]) == "[]"


def test_preview_caps_characters_and_cuts_long_values():
    shown = preview(["x" * 10_000] * 1000)
    assert len(shown) < 400 and "more characters" in shown and shown.endswith("more]")


def test_clip():
    assert clip("short") == "short"
    assert clip("y" * 500, 10) == "yyyyyyyyyy... (490 more characters)"
