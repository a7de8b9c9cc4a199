"""wordtools: small text utilities, the sample project of the alfred demo pipeline."""

from __future__ import annotations

import re
from collections import Counter

__all__ = ["slugify", "top_words", "word_count"]

_WORD = re.compile(r"[A-Za-z0-9']+")


def word_count(text: str) -> int:
    """Count the words of ``text`` (runs of letters, digits and apostrophes)."""
    return len(_WORD.findall(text))


def slugify(text: str) -> str:
    """Turn a title into a URL slug: lower case words joined by hyphens."""
    return "-".join(word.lower() for word in _WORD.findall(text))


def top_words(text: str, n: int = 3) -> list[tuple[str, int]]:
    """The ``n`` most frequent words of ``text`` (case-insensitive), most frequent first.

    Ties are broken by first appearance.
    """
    counts = Counter(word.lower() for word in _WORD.findall(text))
    return counts.most_common(n)


def _internal_helper() -> None:
    """Private: not part of the generated API document."""
