"""Use cases: bootstrap the host ('host init') and report on it ('host status')."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cloche.core import firewall, ssh_access
from cloche.core.backup_repositories import ensure_local_repository, local_repository_path
from cloche.core.context import HostEffects
from cloche.core.daemon_service import daemon_health, ensure_daemon
from cloche.core.ports import Files, LxdServer
from cloche.model.config import ClocheConfig, load_config_text, with_overrides
from cloche.model.errors import ClocheError, HostFailure, Invalid
from cloche.model.host import REQUIRED_PACKAGES
from cloche.model.paths import CADDY_ADMIN_SOCKET
from cloche.render import sysctl as sysctl_render
from cloche.render.caddy import route_count
from cloche.render.config import render_config_yaml
from cloche.render.lxd import Kind, Step, plan_lxd
from cloche.render.sshd import SshdSettings, render_sshd_dropin
from cloche.render.systemd import render_caddy_unit

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


def resolve_config(
    files: Files, config_path: Path, overrides: Mapping[str, object]
) -> ClocheConfig:
    """The config file (or defaults) with command-line overrides, validated as a whole."""
    text = files.read(config_path)
    config = load_config_text(text, str(config_path)) if text is not None else ClocheConfig()
    given = {key: value for key, value in overrides.items() if value is not None}
    return with_overrides(config, given) if given else config


def check_storage_device(files: Files, config: ClocheConfig) -> None:
    """Refuse a storage device that does not exist or is not a block device."""
    device = config.storage.device
    if config.storage.source != "device" or device is None:
        return
    kind = files.kind(Path(device))
    if kind == "missing":
        raise Invalid(
            f"storage.device {device} does not exist; give a block device or partition that "
            "exists, or use storage.source: loop."
        )
    if kind != "block device":
        raise Invalid(
            f"storage.device {device} is not a block device; give a disk or partition, "
            "or use storage.source: loop."
        )


def observe_and_plan(lxd: LxdServer, config: ClocheConfig) -> list[Step]:
    """Read LXD's pool, bridge and profile and plan their convergence (Conflict on clashes)."""
    return plan_lxd(
        config,
        lxd.get_pool(config.storage.pool),
        lxd.get_network(config.network.bridge),
        lxd.get_profile(config.profile.name),
    )


def _apply_step(lxd: LxdServer, step: Step) -> None:
    actions: dict[tuple[str, str], Callable[[dict[str, object]], None]] = {
        ("storage pool", "create"): lxd.create_pool,
        ("network", "create"): lxd.create_network,
        ("network", "update"): lxd.update_network,
        ("profile", "create"): lxd.create_profile,
        ("profile", "update"): lxd.update_profile,
    }
    actions[(step.kind, step.action)](step.request)


def converge_bridge_module(host: HostEffects, report: InitReport) -> None:
    """Load br_netfilter and have it loaded at every boot, where it is a module at all."""
    if not host.kernel.module_is_loadable(sysctl_render.BRIDGE_MODULE):
        return  # built in (or missing: the firewall step then says so in one sentence)
    host.kernel.load_module(sysctl_render.BRIDGE_MODULE)
    path, text = Path(sysctl_render.MODULES_FILE), sysctl_render.render_modules_load()
    if host.files.read(path) != text:
        host.files.write(path, text)
        report.changes.append(f"loaded br_netfilter at boot ({sysctl_render.MODULES_FILE})")


def converge_kernel_settings(host: HostEffects, report: InitReport) -> None:
    """Raise the kernel settings below cloche's minimum now, and persist them."""
    converge_bridge_module(host, report)
    current = host.kernel.read(sysctl_render.MINIMUM_KERNEL_SETTINGS)
    to_raise = sysctl_render.settings_to_raise(current)
    host.kernel.apply(to_raise)
    if to_raise:
        report.changes.append(f"raised kernel settings: {', '.join(sorted(to_raise))}")
    text = sysctl_render.render_sysctl_conf(host.kernel.read(current))
    if host.kernel.persist(Path(sysctl_render.SYSCTL_FILE), text):
        report.changes.append(f"persisted kernel settings in {sysctl_render.SYSCTL_FILE}")
    if not to_raise:
        report.unchanged.append("kernel settings")


def converge_packages(
    host: HostEffects, report: InitReport, install: bool, progress: Progress
) -> None:
    """Install missing Debian packages, or with install=False name them and stop."""
    missing = host.packages.missing(REQUIRED_PACKAGES)
    if missing and not install:
        raise HostFailure(
            f"Missing Debian packages: {' '.join(missing)}; install them with "
            f"'apt-get install {' '.join(missing)}' or run 'cloche host init' without --no-install."
        )
    if missing:
        progress(f"installing {' '.join(missing)}")
        host.packages.install(missing)
        report.changes.append(f"installed {' '.join(missing)}")
    else:
        report.unchanged.append("packages")


def converge_lxd_step(
    host: HostEffects, config: ClocheConfig, state_dir: Path, report: InitReport, progress: Progress
) -> None:
    """Start LXD, then converge its storage pool, bridge and profile."""
    progress("starting LXD")
    how = host.lxd_daemon.start(state_dir)
    if how == "already running":
        report.unchanged.append("LXD daemon")
    else:
        report.changes.append(f"started LXD ({how})")
    progress("converging LXD storage pool, bridge and profile")
    lxd = host.lxd_server(config.lxd.socket)
    for step in observe_and_plan(lxd, config):
        if step.action == "keep":
            report.unchanged.append(f"{step.kind} {step.name}")
            continue
        progress(f"{step.action} {step.kind} {step.name}")
        _apply_step(lxd, step)
        report.changes.append(f"{step.action}d {step.kind} {step.name}")


def converge_firewall_step(
    host: HostEffects, config: ClocheConfig, state_dir: Path, report: InitReport, progress: Progress
) -> None:
    """Load the firewall (table inet cloche) for the environments the database knows."""
    progress("loading the firewall (nftables table inet cloche)")
    if firewall.converge_host_firewall(config, state_dir, host):
        report.changes.append(f"loaded the firewall (table inet cloche, {config.firewall.mode})")
    else:
        report.unchanged.append("firewall")


def converge_caddy_step(
    host: HostEffects, state_dir: Path, report: InitReport, progress: Progress
) -> None:
    """Start Caddy (it serves published routes), with its systemd unit where systemd runs."""
    progress("starting Caddy")
    unit = None
    if host.services.systemd_runs():
        service = host.proxy.service(state_dir)
        unit = render_caddy_unit(service)
    how = host.proxy.ensure_running(state_dir, unit)
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
    host: HostEffects | None = None,
) -> InitReport:
    """Idempotent host bootstrap: validate everything first, then converge each component."""
    host = host or HostEffects()
    started = time.monotonic()
    report = InitReport()
    config = resolve_config(host.files, config_path, overrides or {})
    check_storage_device(host.files, config)

    progress("checking Debian packages")
    converge_packages(host, report, install, progress)

    progress("applying kernel settings")
    converge_kernel_settings(host, report)

    # Before anything writes there: the database, the audit log and the secrets are root's only.
    if host.files.ensure_private_directory(state_dir):
        report.changes.append(f"made {state_dir} private (mode 0700)")

    converge_lxd_step(host, config, state_dir, report, progress)

    converge_firewall_step(host, config, state_dir, report, progress)
    converge_caddy_step(host, state_dir, report, progress)

    progress("configuring the host's sshd")
    changes = ssh_access.converge_sshd(host, config, state_dir)
    report.changes.extend(changes)
    if not changes:
        report.unchanged.append("sshd")

    progress("preparing the local backup repository")
    if ensure_local_repository(state_dir, host.secrets, host.restic, host.backup_files):
        report.changes.append(
            f"created the local backup repository {local_repository_path(state_dir)}"
        )
    else:
        report.unchanged.append("local backup repository")

    text = render_config_yaml(config)
    if host.files.read(config_path) != text:
        host.files.write(config_path, text)
        report.changes.append(f"wrote {config_path}")
    else:
        report.unchanged.append(str(config_path))

    if start_daemon:
        progress("starting the cloche daemon")
        daemon = ensure_daemon(host, state_dir, config_path=config_path)
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


def _check_packages(host: HostEffects) -> str:
    missing = host.packages.missing(REQUIRED_PACKAGES)
    if missing:
        raise HostFailure(f"missing {' '.join(missing)}; run 'cloche host init'.")
    return f"{len(REQUIRED_PACKAGES)} required packages installed"


def _check_kernel(host: HostEffects) -> str:
    low = sysctl_render.settings_to_raise(host.kernel.read(sysctl_render.MINIMUM_KERNEL_SETTINGS))
    if low:
        raise HostFailure(
            f"too low: {', '.join(sorted(low))} (the host cannot run many environments); "
            "run 'cloche host init'."
        )
    return "inotify, keys, map count and neighbour table raised"


def _check_daemon(host: HostEffects) -> str:
    health = daemon_health(host.services)
    if health is None:
        raise HostFailure("the cloche daemon does not answer; run 'cloche host init'.")
    return f"cloche {health.get('version')} answers on its socket"


def _check_addresses(host: HostEffects) -> str:
    health = daemon_health(host.services)
    if health is None:
        raise HostFailure("unknown while the cloche daemon does not answer.")
    mismatches = health.get("address_mismatches")
    if isinstance(mismatches, list) and mismatches:
        raise HostFailure("; ".join(str(mismatch) for mismatch in mismatches) + ".")
    return "every running environment uses only the address cloche assigned"


def _check_sshd(host: HostEffects) -> str:
    if not host.sshd.is_running():
        raise HostFailure("the host's sshd is not running; run 'cloche host init'.")
    if host.sshd.dropin() != render_sshd_dropin(SshdSettings()):
        raise HostFailure(f"{host.sshd.dropin_path} is not cloche's; run 'cloche host init'.")
    return "running, key-only, jump accounts forward-only"


def _check_firewall(host: HostEffects, config: ClocheConfig, state_dir: Path) -> str:
    live = host.firewall.current()
    if live is None:
        raise HostFailure(
            "the nftables table inet cloche is missing (no tenant isolation); "
            "run 'cloche host init'."
        )
    failed = host.files.read(state_dir / firewall.LOAD_ERROR)
    if failed:
        raise HostFailure(
            f"the last firewall load failed ({failed.rstrip('.')}), so the table is an older "
            "one; fix the cause and run 'cloche host init'."
        )
    loaded = host.files.read(state_dir / firewall.LISTING)
    if loaded is not None and live != loaded:
        raise HostFailure(
            "table inet cloche is not what cloche loaded (changed by hand); the reconciler "
            "puts it back within a minute, or run 'cloche host init'."
        )
    return f"table inet cloche loaded, mode {config.firewall.mode}"


def _check_proxy(host: HostEffects) -> str:
    config = host.proxy.current()
    if config is None:
        raise HostFailure(
            f"Caddy does not answer on its admin socket {CADDY_ADMIN_SOCKET} (published routes "
            "are down); run 'cloche host init'."
        )
    routes = route_count(config)
    count = f"{routes} route{'' if routes == 1 else 's'}"
    return f"Caddy answers on its admin socket {CADDY_ADMIN_SOCKET}, {count}"


def _check_lxd_object(lxd: LxdServer, config: ClocheConfig, kind: Kind) -> str:
    step = {step.kind: step for step in observe_and_plan(lxd, config)}[kind]
    if step.action != "keep":
        raise HostFailure(f"{kind} {step.name} needs to be {step.action}d; run 'cloche host init'.")
    return f"{step.name} as configured"


def _connect_lxd(
    host: HostEffects, config: ClocheConfig
) -> tuple[LxdServer | None, ComponentStatus]:
    try:
        if not host.lxd_daemon.answers():
            raise HostFailure("LXD does not answer; run 'cloche host init' to start it.")
        lxd = host.lxd_server(config.lxd.socket)
        extra = (
            "" if host.lxd_daemon.lxcfs_is_mounted() else " (lxcfs not mounted: limits not shown)"
        )
        return lxd, ComponentStatus("lxd", True, f"LXD {lxd.server_version()}{extra}")
    except ClocheError as error:
        return None, ComponentStatus("lxd", False, str(error))


def host_status(
    config_path: Path,
    extra_checks: Mapping[str, Callable[[], str]] | None = None,
    host: HostEffects | None = None,
    state_dir: Path = Path("/var/lib/cloche"),
) -> list[ComponentStatus]:
    """One status per component; each failed one carries the fix in its detail."""
    host = host or HostEffects()
    try:
        config = resolve_config(host.files, config_path, {})
    except ClocheError as error:
        return [ComponentStatus("config", False, str(error))]
    exists = config_path.exists()
    results = [
        ComponentStatus(
            "config",
            exists,
            str(config_path) if exists else f"{config_path} missing; run 'cloche host init'.",
        ),
        _status_of("packages", functools.partial(_check_packages, host)),
        _status_of("kernel", functools.partial(_check_kernel, host)),
    ]
    lxd, lxd_status = _connect_lxd(host, config)
    results.append(lxd_status)
    results += [
        _status_of("daemon", functools.partial(_check_daemon, host)),
        _status_of("addresses", functools.partial(_check_addresses, host)),
        _status_of("firewall", functools.partial(_check_firewall, host, config, state_dir)),
        _status_of("sshd", functools.partial(_check_sshd, host)),
        _status_of("proxy", functools.partial(_check_proxy, host)),
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
