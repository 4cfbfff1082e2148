"""The daemon is restarted when its code or its config file changed since it started."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloche.core import daemon_service
from cloche.model.build import code_fingerprint, config_fingerprint
from cloche.model.config import ClocheConfig, load_config_text
from tests.unit.fakes import TestClient, fake_context


def test_health_names_the_config_the_daemon_runs(tmp_path: Path) -> None:
    from cloche.api.app import create_app

    config = load_config_text("proxy: {tls: internal}\n", "test")
    with fake_context(tmp_path, config) as context, TestClient(create_app(context)) as client:
        body = client.get("/v1/health").json()
    assert body["config"] == config_fingerprint(config)
    assert body["config"] != config_fingerprint(ClocheConfig())


def test_config_fingerprint_ignores_comments_and_layout() -> None:
    plain = load_config_text("proxy: {tls: internal}\n", "a")
    commented = load_config_text("# ours\nproxy:\n  tls: internal   # for tests\n", "b")
    assert config_fingerprint(plain) == config_fingerprint(commented)


class _Daemon:
    """A background daemon as ensure_daemon sees it: health answers, stops and starts."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, running: ClocheConfig) -> None:
        self.health = {"code": code_fingerprint(), "config": config_fingerprint(running)}
        self.starts = 0
        monkeypatch.setattr(daemon_service, "ensure_group", lambda name: False)
        monkeypatch.setattr(daemon_service, "systemd_is_running", lambda: False)
        monkeypatch.setattr(daemon_service, "daemon_health", lambda socket_path: self.health)
        monkeypatch.setattr(daemon_service.services, "stop_service", lambda *args: True)
        monkeypatch.setattr(daemon_service.services, "start_service", self.start)
        monkeypatch.setattr(daemon_service, "_wait_for_daemon", lambda *args: self.health)

    def start(self, *args: object, **kwargs: object) -> int:
        self.starts += 1
        return 4242


def test_a_daemon_on_the_current_config_is_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text("proxy: {tls: internal}\n")
    daemon = _Daemon(monkeypatch, load_config_text(config_file.read_text(), "test"))
    assert daemon_service.ensure_daemon(tmp_path, config_path=config_file) == "kept"
    assert daemon.starts == 0


def test_a_changed_config_file_restarts_the_daemon(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text("proxy: {tls: acme}\n")
    daemon = _Daemon(monkeypatch, ClocheConfig())
    assert daemon_service.ensure_daemon(tmp_path, config_path=config_file) == "kept"
    config_file.write_text("proxy: {tls: internal}\n")
    assert daemon_service.ensure_daemon(tmp_path, config_path=config_file) == "restarted"
    assert daemon.starts == 1


def test_a_missing_config_file_means_the_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    daemon = _Daemon(monkeypatch, ClocheConfig())
    assert daemon_service.ensure_daemon(tmp_path, config_path=tmp_path / "none.yaml") == "kept"
    assert daemon.starts == 0


def test_a_daemon_without_a_config_fingerprint_is_restarted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    daemon = _Daemon(monkeypatch, ClocheConfig())
    del daemon.health["config"]  # a daemon from before the fingerprint existed
    assert daemon_service.ensure_daemon(tmp_path, config_path=tmp_path / "none.yaml") == (
        "restarted"
    )
