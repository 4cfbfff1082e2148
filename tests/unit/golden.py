"""Golden files: compare text with a file under tests/unit/golden; UPDATE_GOLDEN=1 rewrites."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

GOLDEN_DIR = Path(__file__).parent / "golden"


def assert_golden(name: str, actual: str) -> None:
    """Fail unless actual equals the golden file name; rewrite it when UPDATE_GOLDEN=1."""
    path = GOLDEN_DIR / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
    assert path.exists(), f"no golden file {path}; run with UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text(), f"{name} differs from its golden file"


def assert_golden_json(name: str, actual: Any) -> None:
    """assert_golden for a JSON-able value, written sorted and indented."""
    assert_golden(name, json.dumps(actual, indent=2, sort_keys=True) + "\n")
