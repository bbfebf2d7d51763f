"""The documentation that a test can keep true: the URL table of docs/architecture.md."""
from __future__ import annotations

from pathlib import Path

from .helpers.routes_table import BEGIN, END, routes_table

ARCHITECTURE = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"


def test_the_url_table_matches_the_app_routes(app):
    text = ARCHITECTURE.read_text(encoding="utf-8")
    documented = text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip()
    expected = routes_table(app)
    assert documented == expected, (
        "docs/architecture.md's URL table is out of date; replace it with:\n" + expected)
