"""'host init': --no-install, the TLS options, the Caddy step; the proxy line of 'host status'."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cloche.core import host
from cloche.model.errors import HostFailure, Invalid


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


def test_tls_options_become_proxy_overrides(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from cloche.cli import host_commands

    given: dict[str, object] = {}

    def init_host(config_path: Path, state_dir: Path, **kwargs: Any) -> host.InitReport:
        given.update(kwargs["overrides"])
        return host.InitReport()

    monkeypatch.setattr(host, "init_host", init_host)
    arguments = ["init", "--config", str(tmp_path / "c.yaml"), "--tls", "internal"]
    result = CliRunner().invoke(
        host_commands.host_app, [*arguments, "--acme-email", "ops@example.com"]
    )
    assert result.exit_code == 0, result.output
    assert given["proxy.tls"] == "internal"
    assert given["proxy.acme_email"] == "ops@example.com"
    config = host.resolve_config(tmp_path / "c.yaml", given)
    assert (config.proxy.tls, config.proxy.acme_email) == ("internal", "ops@example.com")
    refused = CliRunner().invoke(host_commands.host_app, [*arguments[:-1], "letsencrypt"])
    assert refused.exit_code == 2


def test_bad_acme_email_is_refused_before_anything_changes(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match=r"proxy\.acme_email"):
        host.resolve_config(tmp_path / "c.yaml", {"proxy.acme_email": "ops at example.com"})


def test_caddy_step_reports_a_start_as_a_change(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    answers = iter(["started (background)", "already running"])
    monkeypatch.setattr(host.lxd_daemon, "systemd_is_running", lambda: False)
    monkeypatch.setattr(host.caddy, "ensure_caddy", lambda state_dir, unit_text: next(answers))
    first, second = host.InitReport(), host.InitReport()
    host.converge_caddy_step(tmp_path, first, lambda message: None)
    host.converge_caddy_step(tmp_path, second, lambda message: None)
    assert (first.changes, first.unchanged) == (["Caddy started (background)"], [])
    assert (second.changes, second.unchanged) == ([], ["Caddy"])


def test_caddy_step_installs_the_unit_where_systemd_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    units: list[str | None] = []

    def ensure_caddy(state_dir: Path, unit_text: str | None) -> str:
        units.append(unit_text)
        return "started (systemd)"

    monkeypatch.setattr(host.lxd_daemon, "systemd_is_running", lambda: True)
    monkeypatch.setattr(host.caddy, "ensure_caddy", ensure_caddy)
    host.converge_caddy_step(tmp_path, host.InitReport(), lambda message: None)
    (unit,) = units
    assert unit is not None
    assert f"--config {tmp_path}/caddy/config.json" in unit


@pytest.mark.parametrize(
    ("config", "ok", "detail"),
    [
        (
            {"apps": {"http": {"servers": {"a": {"routes": [{}, {}]}, "b": {"routes": [{}]}}}}},
            True,
            "Caddy answers on 127.0.0.1:2019, 3 routes",
        ),
        ({}, True, "Caddy answers on 127.0.0.1:2019, 0 routes"),
        (None, False, "Caddy does not answer on its admin API at 127.0.0.1:2019"),
    ],
)
def test_status_has_a_proxy_line(
    monkeypatch: pytest.MonkeyPatch, config: dict[str, Any] | None, ok: bool, detail: str
) -> None:
    monkeypatch.setattr(host.caddy, "current_config", lambda: config)
    status = host._status_of("proxy", host._check_proxy)
    assert (status.ok, status.detail.startswith(detail)) == (ok, True), status.detail
    if not ok:
        assert status.detail.endswith("run 'cloche host init'.")
