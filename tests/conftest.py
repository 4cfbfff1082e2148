"""Shared test fixtures: markers for the integration suite and unique names."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest


def unique_suffix() -> str:
    """A short random suffix so parallel or repeated runs never share names."""
    return uuid.uuid4().hex[:8]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything under tests/integration, and skip it naming what the machine lacks."""
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    if shutil.which("lxc") is None:
        missing.append("the lxc client (run 'cloche host init')")
    elif not os.path.exists("/var/lib/lxd/unix.socket"):
        missing.append("a running LXD (/var/lib/lxd/unix.socket; run 'cloche host init')")
    if not missing:
        return
    reason = "integration test needs " + " and ".join(missing)
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))
