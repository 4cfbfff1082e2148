"""'host init --no-install' names exactly what is missing and changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloche.core import host
from cloche.model.errors import HostFailure


def test_no_install_names_the_missing_packages_and_stops(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(host.packages, "missing_packages", lambda names: ["caddy", "restic"])
    installed: list[list[str]] = []
    monkeypatch.setattr(host.packages, "install_packages", installed.append)
    touched: list[str] = []
    monkeypatch.setattr(host, "converge_kernel_settings", lambda report: touched.append("kernel"))
    config = tmp_path / "config.yaml"
    with pytest.raises(HostFailure) as caught:
        host.init_host(config, tmp_path / "state", install=False)
    message = str(caught.value)
    assert message.startswith("Missing Debian packages: caddy restic;")
    assert "apt-get install caddy restic" in message
    assert installed == []
    assert touched == []  # stopped before changing anything
    assert not config.exists()
