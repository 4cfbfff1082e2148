"""What every benchmark script here shares: where things are, and running a command."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLOCHE = str(ROOT / ".venv" / "bin" / "cloche")
# The test key: users the benchmarks add never log in with it.
KEY = ROOT / "tests" / "unit" / "data" / "ed25519.pub"


def run(*argv: str, timeout: float = 900) -> str:
    """Run a command, raise with its stderr on failure, return stdout."""
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip()}")
    return result.stdout
