"""Text that goes into a single-line place: an e-mail header, a calendar property.

Names and places are typed by people and may already hold a line break or
another control character (pasted text, an old import). Written as they are,
they would break the header or calendar line (or inject another one), so
every single-line value that leaves mdt goes through ``one_line``.
"""
from __future__ import annotations

import unicodedata

#: Control characters (C0, C1) and the line and paragraph separators.
_BREAKING = {"Cc", "Zl", "Zp"}


def one_line(value: object) -> str:
    """Return ``value`` as text on one line: each run of control characters becomes a space."""
    text = str(value or "")
    if text.isprintable():
        return text.strip()
    cleaned = "".join(" " if unicodedata.category(ch) in _BREAKING else ch for ch in text)
    return " ".join(cleaned.split())
