"""The daemon is restarted when its code or its config file changed since it started."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from cloche.core import daemon_service
from cloche.core.context import HostEffects
from cloche.model.build import code_fingerprint, config_fingerprint
from cloche.model.config import ClocheConfig, load_config_text
from tests.unit.callers import header_caller
from tests.unit.fakes import TestClient, fake_context


def test_health_names_the_config_the_daemon_runs(tmp_path: Path) -> None:
    from cloche.api.app import create_app

    config = load_config_text("proxy: {tls: internal}\n", "test")
    with (
        fake_context(tmp_path, config) as context,
        TestClient(create_app(context, header_caller)) as client,
    ):
        body = client.get("/v1/health").json()
    assert body["config"] == config_fingerprint(config)
    assert body["config"] != config_fingerprint(ClocheConfig())


def test_config_fingerprint_ignores_comments_and_layout() -> None:
    plain = load_config_text("proxy: {tls: internal}\n", "a")
    commented = load_config_text("# ours\nproxy:\n  tls: internal   # for tests\n", "b")
    assert config_fingerprint(plain) == config_fingerprint(commented)


class _Daemon:
    """A background daemon as ensure_daemon sees it through the Services port."""

    def __init__(self, running: ClocheConfig) -> None:
        self.health = {"code": code_fingerprint(), "config": config_fingerprint(running)}
        self.starts = 0

    def systemd_runs(self) -> bool:
        return False

    def install_unit(self, path: Path, text: str) -> bool:
        raise AssertionError("no systemd here")

    def restart_unit(self, name: str) -> None:
        raise AssertionError("no systemd here")

    def start_background(
        self, state_dir: Path, name: str, argv: Sequence[str], env: Mapping[str, str]
    ) -> None:
        self.starts += 1

    def stop_background(self, state_dir: Path, name: str) -> bool:
        return True

    def get_over_socket(self, socket_path: str, path: str) -> bytes | None:
        return json.dumps(self.health).encode()

    def ensure_admin_group(self) -> bool:
        return False

    def prepare_socket_directory(self, socket_path: Path) -> None:
        raise AssertionError("not asked of ensure_daemon")


def _ensure(daemon: _Daemon, state_dir: Path, config_file: Path) -> str:
    return daemon_service.ensure_daemon(
        HostEffects(services=daemon), state_dir, config_path=config_file
    )


def test_a_daemon_on_the_current_config_is_kept(
    tmp_path: Path,
) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text("proxy: {tls: internal}\n")
    daemon = _Daemon(load_config_text(config_file.read_text(), "test"))
    assert _ensure(daemon, tmp_path, config_file) == "kept"
    assert daemon.starts == 0


def test_a_changed_config_file_restarts_the_daemon(
    tmp_path: Path,
) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text("proxy: {tls: acme}\n")
    daemon = _Daemon(ClocheConfig())
    assert _ensure(daemon, tmp_path, config_file) == "kept"
    config_file.write_text("proxy: {tls: internal}\n")
    assert _ensure(daemon, tmp_path, config_file) == "restarted"
    assert daemon.starts == 1


def test_a_missing_config_file_means_the_defaults(
    tmp_path: Path,
) -> None:
    daemon = _Daemon(ClocheConfig())
    assert _ensure(daemon, tmp_path, tmp_path / "none.yaml") == "kept"
    assert daemon.starts == 0


def test_a_daemon_without_a_config_fingerprint_is_restarted(
    tmp_path: Path,
) -> None:
    daemon = _Daemon(ClocheConfig())
    del daemon.health["config"]  # a daemon from before the fingerprint existed
    assert _ensure(daemon, tmp_path, tmp_path / "none.yaml") == ("restarted")
