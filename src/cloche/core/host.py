"""Use cases: bootstrap the host ('host init') and report on it ('host status')."""

from __future__ import annotations

import functools
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cloche.core import firewall, ssh_access
from cloche.core.backup_repositories import ensure_local_repository, local_repository_path
from cloche.core.daemon_service import daemon_health, ensure_daemon
from cloche.host import caddy, lxd_daemon, nftables, packages, sshd, sysctl
from cloche.host.backup_files import HostBackupFiles
from cloche.host.files import read_text_or_none, write_atomically
from cloche.host.restic import HostRestic
from cloche.host.secrets import HostSecrets
from cloche.model.config import ClocheConfig, load_config_text, with_overrides
from cloche.model.errors import ClocheError, HostFailure, Invalid
from cloche.render import sysctl as sysctl_render
from cloche.render.config import render_config_yaml
from cloche.render.lxd import Kind, Observed, Step, plan_lxd
from cloche.render.sshd import SshdSettings, render_sshd_dropin
from cloche.render.systemd import render_caddy_unit
from cloche.runtime.lxd import Lxd, LxdObject

Progress = Callable[[str], None]


def _quiet(message: str) -> None:
    """Progress sink that drops messages."""


@dataclass
class InitReport:
    """What 'host init' did, step by step, and how long it took."""

    changes: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class ComponentStatus:
    """One line of 'host status': a component, whether it is healthy, and the fix if not."""

    component: str
    ok: bool
    detail: str


def resolve_config(config_path: Path, overrides: Mapping[str, object]) -> ClocheConfig:
    """The config file (or defaults) with command-line overrides, validated as a whole."""
    text = read_text_or_none(config_path)
    config = load_config_text(text, str(config_path)) if text is not None else ClocheConfig()
    given = {key: value for key, value in overrides.items() if value is not None}
    return with_overrides(config, given) if given else config


def check_storage_device(config: ClocheConfig) -> None:
    """Refuse a storage device that does not exist or is not a block device."""
    device = config.storage.device
    if config.storage.source != "device" or device is None:
        return
    try:
        mode = Path(device).stat().st_mode
    except FileNotFoundError:
        raise Invalid(
            f"storage.device {device} does not exist; give a block device or partition that "
            "exists, or use storage.source: loop."
        ) from None
    if not stat.S_ISBLK(mode):
        raise Invalid(
            f"storage.device {device} is not a block device; give a disk or partition, "
            "or use storage.source: loop."
        )


def _observed(item: LxdObject | None) -> Observed | None:
    if item is None:
        return None
    return Observed(
        description=item.description,
        config=item.config,
        driver=item.driver,
        network_type=item.kind,
        devices=item.devices,
    )


def observe_and_plan(lxd: Lxd, config: ClocheConfig) -> list[Step]:
    """Read LXD's pool, bridge and profile and plan their convergence (Conflict on clashes)."""
    return plan_lxd(
        config,
        _observed(lxd.get_pool(config.storage.pool)),
        _observed(lxd.get_network(config.network.bridge)),
        _observed(lxd.get_profile(config.profile.name)),
    )


def _apply_step(lxd: Lxd, step: Step) -> None:
    actions: dict[tuple[str, str], Callable[[dict[str, object]], None]] = {
        ("storage pool", "create"): lxd.create_pool,
        ("network", "create"): lxd.create_network,
        ("network", "update"): lxd.update_network,
        ("profile", "create"): lxd.create_profile,
        ("profile", "update"): lxd.update_profile,
    }
    actions[(step.kind, step.action)](step.request)


def converge_kernel_settings(report: InitReport) -> None:
    """Raise the kernel settings below cloche's minimum now, and persist them."""
    current = sysctl.read_settings(sysctl_render.MINIMUM_KERNEL_SETTINGS)
    to_raise = sysctl_render.settings_to_raise(current)
    sysctl.apply_settings(to_raise)
    if to_raise:
        report.changes.append(f"raised kernel settings: {', '.join(sorted(to_raise))}")
    text = sysctl_render.render_sysctl_conf(sysctl.read_settings(current))
    if sysctl.persist_settings(Path(sysctl_render.SYSCTL_FILE), text):
        report.changes.append(f"persisted kernel settings in {sysctl_render.SYSCTL_FILE}")
    if not to_raise:
        report.unchanged.append("kernel settings")


def converge_packages(report: InitReport, install: bool, progress: Progress) -> None:
    """Install missing Debian packages, or with install=False name them and stop."""
    missing = packages.missing_packages(packages.REQUIRED_PACKAGES)
    if missing and not install:
        raise HostFailure(
            f"Missing Debian packages: {' '.join(missing)}; install them with "
            f"'apt-get install {' '.join(missing)}' or run 'cloche host init' without --no-install."
        )
    if missing:
        progress(f"installing {' '.join(missing)}")
        packages.install_packages(missing)
        report.changes.append(f"installed {' '.join(missing)}")
    else:
        report.unchanged.append("packages")


def converge_firewall_step(
    config: ClocheConfig, state_dir: Path, report: InitReport, progress: Progress
) -> None:
    """Load the firewall (table inet cloche) for the environments the database knows."""
    progress("loading the firewall (nftables table inet cloche)")
    if firewall.converge_host_firewall(config, state_dir):
        report.changes.append(f"loaded the firewall (table inet cloche, {config.firewall.mode})")
    else:
        report.unchanged.append("firewall")


def converge_caddy_step(state_dir: Path, report: InitReport, progress: Progress) -> None:
    """Start Caddy (it serves published routes), with its systemd unit where systemd runs."""
    progress("starting Caddy")
    unit = None
    if lxd_daemon.systemd_is_running():
        unit = render_caddy_unit(
            caddy.CADDY_BINARY,
            str(caddy.caddy_dir(state_dir)),
            str(caddy.config_path(state_dir)),
            caddy.caddy_environment(state_dir),
        )
    how = caddy.ensure_caddy(state_dir, unit_text=unit)
    if how == "already running":
        report.unchanged.append("Caddy")
    else:
        report.changes.append(f"Caddy {how}")


def init_host(
    config_path: Path,
    state_dir: Path,
    *,
    overrides: Mapping[str, object] | None = None,
    install: bool = True,
    start_daemon: bool = True,
    progress: Progress = _quiet,
) -> InitReport:
    """Idempotent host bootstrap: validate everything first, then converge each component."""
    started = time.monotonic()
    report = InitReport()
    config = resolve_config(config_path, overrides or {})
    check_storage_device(config)

    progress("checking Debian packages")
    converge_packages(report, install, progress)

    progress("applying kernel settings")
    converge_kernel_settings(report)

    progress("starting LXD")
    how = lxd_daemon.start_lxd(state_dir)
    if how == "already running":
        report.unchanged.append("LXD daemon")
    else:
        report.changes.append(f"started LXD ({how})")

    progress("converging LXD storage pool, bridge and profile")
    lxd = Lxd(config.lxd.socket)
    steps = observe_and_plan(lxd, config)
    for step in steps:
        if step.action == "keep":
            report.unchanged.append(f"{step.kind} {step.name}")
            continue
        progress(f"{step.action} {step.kind} {step.name}")
        _apply_step(lxd, step)
        report.changes.append(f"{step.action}d {step.kind} {step.name}")

    converge_firewall_step(config, state_dir, report, progress)
    converge_caddy_step(state_dir, report, progress)

    progress("configuring the host's sshd")
    changes = ssh_access.converge_sshd(config, state_dir)
    report.changes.extend(changes)
    if not changes:
        report.unchanged.append("sshd")

    progress("preparing the local backup repository")
    if ensure_local_repository(state_dir, HostSecrets(), HostRestic(), HostBackupFiles()):
        report.changes.append(
            f"created the local backup repository {local_repository_path(state_dir)}"
        )
    else:
        report.unchanged.append("local backup repository")

    text = render_config_yaml(config)
    if read_text_or_none(config_path) != text:
        write_atomically(config_path, text)
        report.changes.append(f"wrote {config_path}")
    else:
        report.unchanged.append(str(config_path))

    if start_daemon:
        progress("starting the cloche daemon")
        daemon = ensure_daemon(state_dir, config_path=config_path)
        if daemon == "kept":
            report.unchanged.append("cloche daemon")
        else:
            report.changes.append(f"cloche daemon {daemon}")
    report.seconds = time.monotonic() - started
    return report


def _status_of(component: str, check: Callable[[], str]) -> ComponentStatus:
    try:
        return ComponentStatus(component, True, check())
    except ClocheError as error:
        return ComponentStatus(component, False, str(error))


def _check_packages() -> str:
    missing = packages.missing_packages(packages.REQUIRED_PACKAGES)
    if missing:
        raise HostFailure(f"missing {' '.join(missing)}; run 'cloche host init'.")
    return f"{len(packages.REQUIRED_PACKAGES)} required packages installed"


def _check_kernel() -> str:
    low = sysctl_render.settings_to_raise(
        sysctl.read_settings(sysctl_render.MINIMUM_KERNEL_SETTINGS)
    )
    if low:
        raise HostFailure(
            f"too low: {', '.join(sorted(low))} (the host cannot run many environments); "
            "run 'cloche host init'."
        )
    return "inotify, keys, map count and neighbour table raised"


def _check_daemon() -> str:
    health = daemon_health()
    if health is None:
        raise HostFailure("the cloche daemon does not answer; run 'cloche host init'.")
    return f"cloche {health.get('version')} answers on its socket"


def _check_sshd() -> str:
    if sshd.running_sshd_pid() is None and not lxd_daemon.systemd_is_running():
        raise HostFailure("the host's sshd is not running; run 'cloche host init'.")
    if read_text_or_none(sshd.DROPIN_PATH) != render_sshd_dropin(SshdSettings()):
        raise HostFailure(f"{sshd.DROPIN_PATH} is not cloche's; run 'cloche host init'.")
    return "running, key-only, jump accounts forward-only"


def _check_firewall(config: ClocheConfig) -> str:
    if nftables.current_ruleset() is None:
        raise HostFailure(
            "the nftables table inet cloche is missing (no tenant isolation); "
            "run 'cloche host init'."
        )
    return f"table inet cloche loaded, mode {config.firewall.mode}"


def _check_proxy() -> str:
    config = caddy.current_config()
    if config is None:
        raise HostFailure(
            f"Caddy does not answer on its admin API at {caddy.ADMIN_LISTEN} (published routes "
            "are down); run 'cloche host init'."
        )
    routes = caddy.route_count(config)
    return f"Caddy answers on {caddy.ADMIN_LISTEN}, {routes} route{'' if routes == 1 else 's'}"


def _check_lxd_object(lxd: Lxd, config: ClocheConfig, kind: Kind) -> str:
    step = {step.kind: step for step in observe_and_plan(lxd, config)}[kind]
    if step.action != "keep":
        raise HostFailure(f"{kind} {step.name} needs to be {step.action}d; run 'cloche host init'.")
    return f"{step.name} as configured"


def _connect_lxd(config: ClocheConfig) -> tuple[Lxd | None, ComponentStatus]:
    try:
        if not lxd_daemon.lxd_answers():
            raise HostFailure("LXD does not answer; run 'cloche host init' to start it.")
        lxd = Lxd(config.lxd.socket)
        extra = "" if lxd_daemon.lxcfs_is_mounted() else " (lxcfs not mounted: limits not shown)"
        return lxd, ComponentStatus("lxd", True, f"LXD {lxd.server_version()}{extra}")
    except ClocheError as error:
        return None, ComponentStatus("lxd", False, str(error))


def host_status(
    config_path: Path,
    extra_checks: Mapping[str, Callable[[], str]] | None = None,
) -> list[ComponentStatus]:
    """One status per component; each failed one carries the fix in its detail."""
    try:
        config = resolve_config(config_path, {})
    except ClocheError as error:
        return [ComponentStatus("config", False, str(error))]
    exists = config_path.exists()
    results = [
        ComponentStatus(
            "config",
            exists,
            str(config_path) if exists else f"{config_path} missing; run 'cloche host init'.",
        ),
        _status_of("packages", _check_packages),
        _status_of("kernel", _check_kernel),
    ]
    lxd, lxd_status = _connect_lxd(config)
    results.append(lxd_status)
    results += [
        _status_of("daemon", _check_daemon),
        _status_of("firewall", lambda: _check_firewall(config)),
        _status_of("sshd", _check_sshd),
        _status_of("proxy", _check_proxy),
    ]
    kinds: dict[str, Kind] = {"pool": "storage pool", "bridge": "network", "profile": "profile"}
    for component, kind in kinds.items():
        if lxd is None:
            results.append(ComponentStatus(component, False, "unknown while LXD is down."))
        else:
            results.append(
                _status_of(component, functools.partial(_check_lxd_object, lxd, config, kind))
            )
    results += [_status_of(name, check) for name, check in (extra_checks or {}).items()]
    return results
