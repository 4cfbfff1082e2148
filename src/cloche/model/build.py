"""Which code and config a daemon runs: lets host init notice one that runs older ones."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cloche.model.config import ClocheConfig

PACKAGE_DIR = Path(__file__).resolve().parents[1]


@cache
def code_fingerprint() -> str:
    """A short hash of every Python file of the package as it is on disk now."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def config_fingerprint(config: ClocheConfig) -> str:
    """A short hash of a validated config (comments and layout of its file do not count)."""
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]
