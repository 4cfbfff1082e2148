"""The host's side of core's ports: thin classes over the host modules (no decisions here)."""

from __future__ import annotations

import functools
import glob
import ipaddress
import json
import os
import shutil
import socket
import stat
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cloche.host import caddy, caddy_home, lxd_daemon, nftables, packages, services, sshd, sysctl
from cloche.host.accounts import account_of_uid, ensure_group, group_id
from cloche.host.files import ensure_private_directory, read_text_or_none, write_atomically
from cloche.host.logs import new_file_lines, new_journal_lines
from cloche.host.ports import host_port_in_use
from cloche.host.run import run
from cloche.model.errors import HostFailure
from cloche.model.host import CaddyService, PathKind
from cloche.model.paths import CADDY_USER
from cloche.model.principals import ADMIN_GROUP, HostAccount
from cloche.model.text import output_tail


class HostFiles:
    """Files on this host."""

    def read(self, path: Path) -> str | None:
        """The file's text, or None when it does not exist."""
        return read_text_or_none(path)

    def write(self, path: Path, content: str | bytes, mode: int = 0o644) -> None:
        """Replace the file atomically."""
        write_atomically(path, content, mode=mode)

    def remove(self, path: Path) -> None:
        """Remove the file, if there is one."""
        path.unlink(missing_ok=True)

    def kind(self, path: Path) -> PathKind:
        """Whether path is missing, a block device or something else."""
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            return "missing"
        return "block device" if stat.S_ISBLK(mode) else "other"

    def ensure_private_directory(self, path: Path) -> bool:
        """path is a 0700 directory, made or tightened; True if it changed."""
        return ensure_private_directory(path)


class HostFirewall:
    """Table inet cloche in this host's root network namespace."""

    def current(self) -> str | None:
        """The live table's listing, or None when it does not exist."""
        return nftables.current_ruleset()

    def apply(self, text: str) -> None:
        """Turn br_netfilter on, then check and load the script (restored on failure)."""
        nftables.ensure_bridge_netfilter()
        nftables.apply_ruleset(text)

    def change_elements(self, text: str) -> None:
        """Check and load the element changes (nothing changes when nft refuses them)."""
        nftables.change_elements(text)

    def forget_connections(self, address: str) -> None:
        """conntrack -D of every entry from or to address (none found is not a failure)."""
        for direction in ("--src", "--dst"):
            result = run(["conntrack", "-D", direction, address], check=False, timeout=30)
            # 1: no entry matched; anything else is conntrack failing.
            if result.returncode not in (0, 1):
                raise HostFailure(
                    f"Could not forget the connections of {address}: "
                    f"{output_tail(result.stderr, lines=1) or 'no output'}; install conntrack "
                    "('cloche host init') and retry."
                )


class HostProxy:
    """The Caddy that cloche runs on this host, driven through its admin socket."""

    def current(self) -> dict[str, Any] | None:
        """The live config, or None when Caddy does not answer."""
        return caddy.current_config()

    def load(self, config: dict[str, Any], state_dir: Path) -> None:
        """Start Caddy if it is down, then load config (Caddy keeps the old one on failure)."""
        if not caddy.caddy_answers():
            caddy.ensure_caddy(state_dir)
        caddy.load_config(config, state_dir)

    def last_loaded(self, state_dir: Path) -> dict[str, Any] | None:
        """The config load_config kept for Caddy's restarts, or None before any."""
        return caddy.saved_config(state_dir)

    def service(self, state_dir: Path) -> CaddyService:
        """How Caddy runs here."""
        return CaddyService(
            binary=caddy.CADDY_BINARY,
            directory=str(caddy_home.caddy_dir(state_dir)),
            config_file=str(caddy_home.config_path(state_dir)),
            environment=caddy_home.caddy_environment(state_dir),
            user=CADDY_USER,
            admin_socket=str(caddy_home.socket_path(caddy.ADMIN_LISTEN)),
        )

    def ensure_running(self, state_dir: Path, unit_text: str | None) -> str:
        """Start Caddy unless it runs; say how."""
        return caddy.ensure_caddy(state_dir, unit_text=unit_text)


class HostSshd:
    """The host's OpenSSH server."""

    dropin_path: Path = sshd.DROPIN_PATH

    def ensure_running(self, log_file: Path) -> bool:
        """Start sshd unless it runs; True if it was started."""
        log_file.parent.mkdir(parents=True, exist_ok=True)
        return sshd.ensure_sshd_running(log_file=log_file)

    def apply_dropin(self, text: str) -> bool:
        """Validate, swap, reload (rolled back on failure); True if it changed."""
        return sshd.apply_sshd_dropin(text)

    def dropin(self) -> str | None:
        """The drop-in's current text."""
        return read_text_or_none(self.dropin_path)

    def is_running(self) -> bool:
        """Whether sshd runs (systemd keeps it where systemd runs)."""
        return sshd.running_sshd_pid() is not None or lxd_daemon.systemd_is_running()

    def host_public_keys(self) -> list[str]:
        """The host's own public keys as 'type base64'."""
        keys = []
        for path in sorted(glob.glob("/etc/ssh/ssh_host_*_key.pub")):
            parts = Path(path).read_text().split()
            if len(parts) >= 2:
                keys.append(f"{parts[0]} {parts[1]}")
        return keys

    def new_log_lines(self, state_dir: Path, log_file: Path) -> list[str]:
        """sshd's new log lines: from the journal where systemd runs, else from log_file."""
        if lxd_daemon.systemd_is_running():
            return new_journal_lines(sshd.SYSTEMD_UNIT, state_dir / "sshd.cursor")
        return new_file_lines(log_file, state_dir / "sshd.offset")


class HostJumpAccounts:
    """Jump accounts on this host's sshd."""

    def ensure(self, user: str) -> None:
        """The user's jump account exists."""
        sshd.ensure_jump_account(user)

    def write_keys(self, user: str, text: str) -> None:
        """Replace the user's authorized_keys file."""
        sshd.write_authorized_keys(user, text)

    def read_keys(self, user: str) -> str | None:
        """The user's authorized_keys text, or None when there is none."""
        return sshd.read_authorized_keys(user)

    def end_sessions(self, user: str) -> int:
        """End the account's open sshd sessions; return how many."""
        return sshd.end_jump_sessions(user)

    def remove(self, user: str) -> None:
        """Remove the keys file first (new logins fail at once), then the account."""
        sshd.remove_authorized_keys(user)
        sshd.remove_jump_account(user)


class HostPackages:
    """Debian packages through dpkg and apt."""

    def missing(self, names: Sequence[str]) -> list[str]:
        """The packages not installed."""
        return packages.missing_packages(names)

    def install(self, names: Sequence[str]) -> None:
        """Install packages."""
        packages.install_packages(names)


class HostKernelSettings:
    """sysctl settings under /proc/sys and /etc/sysctl.d."""

    def read(self, keys: Iterable[str]) -> dict[str, int | None]:
        """The current values."""
        return sysctl.read_settings(keys)

    def apply(self, settings: Mapping[str, int]) -> None:
        """Set them now."""
        sysctl.apply_settings(settings)

    def persist(self, path: Path, text: str) -> bool:
        """Write the sysctl.d file; True if it changed."""
        return sysctl.persist_settings(path, text)

    def module_is_loadable(self, name: str) -> bool:
        """modinfo names a module file for name (not '(builtin)')."""
        if shutil.which("modinfo") is None:
            return False
        found = run(["modinfo", "-F", "filename", name], check=False, timeout=10)
        return found.ok and found.stdout.strip() not in ("", "(builtin)")

    def load_module(self, name: str) -> None:
        """modprobe name."""
        run(["modprobe", name], timeout=30)


class HostLxdDaemon:
    """The LXD daemon (and lxcfs) on this host."""

    def start(self, state_dir: Path) -> str:
        """Start LXD unless it answers; say how."""
        return lxd_daemon.start_lxd(state_dir)

    def answers(self) -> bool:
        """Whether LXD answers."""
        return lxd_daemon.lxd_answers()

    def lxcfs_is_mounted(self) -> bool:
        """Whether lxcfs is mounted."""
        return lxd_daemon.lxcfs_is_mounted()


class HostServices:
    """Services: systemd units where systemd runs, background processes otherwise."""

    def systemd_runs(self) -> bool:
        """Whether systemd is PID 1."""
        return lxd_daemon.systemd_is_running()

    def install_unit(self, path: Path, text: str) -> bool:
        """Write the unit and reload systemd when it changed."""
        if read_text_or_none(path) == text:
            return False
        write_atomically(path, text)
        run(["systemctl", "daemon-reload"])
        return True

    def restart_unit(self, name: str) -> None:
        """Enable and restart a unit."""
        run(["systemctl", "enable", name])
        run(["systemctl", "restart", name])

    def start_background(
        self, state_dir: Path, name: str, argv: Sequence[str], env: Mapping[str, str]
    ) -> None:
        """Start argv detached with its pid and log under state_dir."""
        services.start_service(state_dir, name, argv, env=env)

    def stop_background(self, state_dir: Path, name: str) -> bool:
        """Stop it; True if it ran."""
        return services.stop_service(state_dir, name)

    def get_over_socket(self, socket_path: str, path: str) -> bytes | None:
        """GET over a unix socket."""
        return services.http_get_over_unix_socket(socket_path, path)

    def ensure_admin_group(self) -> bool:
        """The cloche-admin group exists; True if created."""
        return ensure_group(ADMIN_GROUP)

    def prepare_socket_directory(self, socket_path: Path) -> None:
        """The socket's directory exists, root-owned, with no stale socket in it."""
        # uvicorn makes the socket itself world-writable, so access is decided by the directory.
        directory = socket_path.parent
        directory.mkdir(parents=True, exist_ok=True)
        gid = group_id(ADMIN_GROUP)
        os.chown(directory, 0, gid if gid is not None else 0)
        # Every local account may connect: the daemon identifies each caller by its peer
        # credentials and refuses an account that is neither an admin nor mapped to a user.
        os.chmod(directory, 0o755)  # noqa: S103
        if socket_path.exists():
            socket_path.unlink()


class HostAccountDatabase:
    """The host's account database (passwd and group)."""

    def account(self, uid: int) -> HostAccount | None:
        """The account with this uid, or None."""
        return account_of_uid(uid)


class HostNetworkStack:
    """The host's own sockets and name."""

    def port_in_use(self, protocol: Literal["tcp", "udp"], port: int) -> bool:
        """True when the port is held on the host."""
        return host_port_in_use(protocol, port)

    def fqdn(self) -> str:
        """The host's fully qualified name (looked up once: it may ask DNS)."""
        return _fully_qualified_name()

    def interface_networks(self) -> dict[str, list[str]]:
        """The IPv4 networks of each interface, from 'ip -json -4 address show'."""
        listing = json.loads(run(["ip", "-json", "-4", "address", "show"], timeout=10).stdout)
        networks: dict[str, list[str]] = {}
        for interface in listing:
            for address in interface.get("addr_info") or []:
                cidr = f"{address['local']}/{address['prefixlen']}"
                network = str(ipaddress.IPv4Network(cidr, strict=False))
                networks.setdefault(str(interface["ifname"]), []).append(network)
        return networks


@functools.cache
def _fully_qualified_name() -> str:
    return socket.getfqdn()


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        """Now, in UTC."""
        return datetime.now(UTC)
