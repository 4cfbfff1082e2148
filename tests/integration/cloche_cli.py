"""Running the real cloche CLI and daemon from integration tests."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

CLOCHE = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "cloche")
KEYS = Path(__file__).resolve().parents[1] / "unit" / "data"


def cloche(
    *args: str, input_text: str | None = None, config: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the real cloche CLI and return what it printed and its exit status."""
    environment = dict(os.environ)
    if config is not None:
        environment["CLOCHE_CONFIG"] = str(config)
    return subprocess.run(
        [CLOCHE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        input=input_text,
        check=False,
    )


def cloche_ok(*args: str, input_text: str | None = None) -> str:
    """Run cloche, fail the test with its stderr unless it exits 0, return stdout."""
    result = cloche(*args, input_text=input_text)
    assert result.returncode == 0, f"cloche {' '.join(args)}: {result.stderr}{result.stdout}"
    return result.stdout


def cloche_json(*args: str) -> Any:
    """Run a cloche read command with --json and decode it."""
    return json.loads(cloche_ok(*args, "--json"))
