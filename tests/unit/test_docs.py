"""The docs that are generated from code stay true to it."""

from __future__ import annotations

from pathlib import Path

from cloche.render.config import render_config_reference

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_config_reference_matches_the_schema() -> None:
    text = (DOCS / "config.md").read_text()
    start = text.index("-->\n", text.index("<!-- generated")) + len("-->\n")
    end = text.index("<!-- end of generated table -->")
    assert text[start:end] == render_config_reference(), (
        "docs/config.md is stale: paste the output of "
        "'python -c \"from cloche.render.config import render_config_reference as r; print(r())\"'"
    )
