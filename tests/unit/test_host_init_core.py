"""'host init': --no-install, the TLS options, the Caddy step; the proxy line of 'host status'."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from cloche.core import host
from cloche.core.context import HostEffects
from cloche.host.adapters import HostFiles
from cloche.model.errors import HostFailure, Invalid
from tests.unit.fakes import FakeProxy, FakeServices
from tests.unit.golden import assert_golden

FILES = HostFiles()


class _Packages:
    def __init__(self, missing: list[str]) -> None:
        self.missing_names = missing
        self.installed: list[list[str]] = []

    def missing(self, names: Sequence[str]) -> list[str]:
        return self.missing_names

    def install(self, names: Sequence[str]) -> None:
        self.installed.append(list(names))


class _Kernel:
    def __init__(self) -> None:
        self.touched = False

    def read(self, keys: Iterable[str]) -> dict[str, int | None]:
        self.touched = True
        return {}

    def apply(self, settings: Mapping[str, int]) -> None:
        self.touched = True

    def persist(self, path: Path, text: str) -> bool:
        self.touched = True
        return False

    def module_is_loadable(self, name: str) -> bool:
        return False  # br_netfilter built in, as on the project's machines

    def load_module(self, name: str) -> None:
        raise AssertionError("nothing to load")


def test_no_install_names_the_missing_packages_and_stops(tmp_path: Path) -> None:
    packages, kernel = _Packages(["caddy", "restic"]), _Kernel()
    config = tmp_path / "config.yaml"
    with pytest.raises(HostFailure) as caught:
        host.init_host(
            config,
            tmp_path / "state",
            install=False,
            host=HostEffects(packages=packages, kernel=kernel),
        )
    message = str(caught.value)
    assert message.startswith("Missing Debian packages: caddy restic;")
    assert "apt-get install caddy restic" in message
    assert packages.installed == []
    assert not kernel.touched  # stopped before changing anything
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
    config = host.resolve_config(FILES, tmp_path / "c.yaml", given)
    assert (config.proxy.tls, config.proxy.acme_email) == ("internal", "ops@example.com")
    refused = CliRunner().invoke(host_commands.host_app, [*arguments[:-1], "letsencrypt"])
    assert refused.exit_code == 2


def test_bad_acme_email_is_refused_before_anything_changes(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match=r"proxy\.acme_email"):
        host.resolve_config(FILES, tmp_path / "c.yaml", {"proxy.acme_email": "ops at example.com"})


def test_caddy_step_reports_a_start_as_a_change(tmp_path: Path) -> None:
    proxy = FakeProxy(running=False)
    effects = HostEffects(proxy=proxy, services=FakeServices(systemd=False))
    first, second = host.InitReport(), host.InitReport()
    host.converge_caddy_step(effects, tmp_path, first, lambda message: None)
    host.converge_caddy_step(effects, tmp_path, second, lambda message: None)
    assert (first.changes, first.unchanged) == (["Caddy started (background)"], [])
    assert (second.changes, second.unchanged) == ([], ["Caddy"])
    assert proxy.units == [None]


def test_caddy_step_installs_the_unit_where_systemd_runs(tmp_path: Path) -> None:
    proxy = FakeProxy(running=False)
    effects = HostEffects(proxy=proxy, services=FakeServices(systemd=True))
    host.converge_caddy_step(effects, tmp_path, host.InitReport(), lambda message: None)
    (unit,) = proxy.units
    assert unit is not None
    assert f"--config {tmp_path.parent}/{tmp_path.name}-caddy/config.json" in unit
    assert "User=caddy\n" in unit and "RuntimeDirectory=cloche-caddy\n" in unit


@pytest.mark.parametrize(
    ("config", "ok", "detail"),
    [
        (
            {"apps": {"http": {"servers": {"a": {"routes": [{}, {}]}, "b": {"routes": [{}]}}}}},
            True,
            "Caddy answers on its admin socket /run/cloche-caddy/admin.sock, 3 routes",
        ),
        ({}, True, "Caddy answers on its admin socket /run/cloche-caddy/admin.sock, 0 routes"),
        (None, False, "Caddy does not answer on its admin socket /run/cloche-caddy/admin.sock"),
    ],
)
def test_status_has_a_proxy_line(config: dict[str, Any] | None, ok: bool, detail: str) -> None:
    effects = HostEffects(proxy=FakeProxy(config=config))
    status = host._status_of("proxy", lambda: host._check_proxy(effects))
    assert (status.ok, status.detail.startswith(detail)) == (ok, True), status.detail
    if not ok:
        assert status.detail.endswith("run 'cloche host init'.")


class _ModularKernel(_Kernel):
    """A kernel where br_netfilter is a loadable module."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []

    def module_is_loadable(self, name: str) -> bool:
        return name == "br_netfilter"

    def load_module(self, name: str) -> None:
        self.loaded.append(name)


class _Files(HostFiles):
    """Files, with cloche's host paths moved under a test directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _under(self, path: Path) -> Path:
        return self.root / path.relative_to("/")

    def read(self, path: Path) -> str | None:
        return super().read(self._under(path))

    def write(self, path: Path, content: str | bytes, mode: int = 0o644) -> None:
        super().write(self._under(path), content, mode)


def test_br_netfilter_is_loaded_now_and_at_every_boot_where_it_is_a_module(
    tmp_path: Path,
) -> None:
    kernel = _ModularKernel()
    effects = HostEffects(kernel=kernel, files=_Files(tmp_path))
    report = host.InitReport()
    host.converge_bridge_module(effects, report)
    assert kernel.loaded == ["br_netfilter"]
    written = tmp_path / "etc/modules-load.d/cloche.conf"
    assert_golden("sysctl/modules-load.conf", written.read_text())
    assert report.changes == ["loaded br_netfilter at boot (/etc/modules-load.d/cloche.conf)"]
    again = host.InitReport()
    host.converge_bridge_module(effects, again)
    assert again.changes == []  # the file is cloche's already
    built_in = HostEffects(kernel=_Kernel(), files=_Files(tmp_path / "other"))
    host.converge_bridge_module(built_in, host.InitReport())
    assert not (tmp_path / "other").exists()  # nothing to load, nothing written
