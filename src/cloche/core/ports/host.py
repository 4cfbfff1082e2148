"""The host's ports: files, firewall, Caddy, sshd, jump accounts, packages, kernel, LXD
daemon and server, services, the network stack and the clock (adapters in host/)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from cloche.model.host import CaddyService, LxdObject, PathKind
from cloche.model.principals import HostAccount


class Files(Protocol):
    """Host and state files, written atomically (readers see the old or the new, never half)."""

    def read(self, path: Path) -> str | None:
        """The file's text, or None when it does not exist."""

    def write(self, path: Path, content: str | bytes, mode: int = 0o644) -> None:
        """Replace the file atomically with content."""

    def remove(self, path: Path) -> None:
        """Remove the file (nothing when it does not exist)."""

    def kind(self, path: Path) -> PathKind:
        """Whether path is missing, a block device or something else."""

    def ensure_private_directory(self, path: Path) -> bool:
        """path is a directory only its owner can open (0700), made or tightened; True if so."""


class Firewall(Protocol):
    """The host's nftables table inet cloche."""

    def current(self) -> str | None:
        """The live table's listing, or None when it does not exist."""

    def apply(self, text: str) -> None:
        """Check and load an nft script that replaces the table, atomically."""

    def change_elements(self, text: str) -> None:
        """Check and load an nft script of set element changes, in one transaction."""

    def forget_connections(self, address: str) -> None:
        """Drop the connection-tracking entries from and to address, so no flow the rules
        allowed before outlives a change (a tighter egress, a released address)."""


class Proxy(Protocol):
    """Caddy, which serves http(s) routes."""

    def current(self) -> dict[str, Any] | None:
        """The live config, or None when the proxy does not answer."""

    def load(self, config: dict[str, Any], state_dir: Path) -> None:
        """Load a whole config atomically (started first if it is not running)."""

    def last_loaded(self, state_dir: Path) -> dict[str, Any] | None:
        """The config the last successful load gave it, or None before any."""

    def service(self, state_dir: Path) -> CaddyService:
        """How Caddy is run on this host (binary, directories, environment)."""

    def ensure_running(self, state_dir: Path, unit_text: str | None) -> str:
        """Start Caddy unless it runs (as a systemd unit when unit_text is given); say how."""


class Sshd(Protocol):
    """The host's OpenSSH server and its cloche drop-in."""

    dropin_path: Path

    def ensure_running(self, log_file: Path) -> bool:
        """Start sshd unless it runs (logging to log_file without systemd); True if started."""

    def apply_dropin(self, text: str) -> bool:
        """Validate, swap in and reload the drop-in (rolled back on failure); True if changed."""

    def dropin(self) -> str | None:
        """The drop-in's current text, or None when there is none."""

    def is_running(self) -> bool:
        """Whether sshd runs (or systemd keeps it)."""

    def host_public_keys(self) -> list[str]:
        """The host sshd's own public keys as 'type base64'."""

    def new_log_lines(self, state_dir: Path, log_file: Path) -> list[str]:
        """sshd's log lines since the last call (the journal, or log_file without systemd)."""


class JumpAccounts(Protocol):
    """The host accounts users jump through: forward-only, with cloche's keys files."""

    def ensure(self, user: str) -> None:
        """The user's jump account exists (no shell, in the jump group)."""

    def write_keys(self, user: str, text: str) -> None:
        """Replace the user's authorized_keys file (sshd reads it at each login)."""

    def read_keys(self, user: str) -> str | None:
        """The user's authorized_keys text, or None when there is none."""

    def end_sessions(self, user: str) -> int:
        """End the account's open sshd sessions (tunnels, ControlMasters); return how many."""

    def remove(self, user: str) -> None:
        """Remove the user's keys file and jump account."""


class Packages(Protocol):
    """The host's Debian packages."""

    def missing(self, names: Sequence[str]) -> list[str]:
        """The names among names that are not installed."""

    def install(self, names: Sequence[str]) -> None:
        """Install packages (non-interactive)."""


class KernelSettings(Protocol):
    """The host's sysctl settings."""

    def read(self, keys: Iterable[str]) -> dict[str, int | None]:
        """The current value of each key (None when the kernel has no such setting)."""

    def apply(self, settings: Mapping[str, int]) -> None:
        """Set the settings now."""

    def persist(self, path: Path, text: str) -> bool:
        """Write the sysctl.d file so they survive a reboot; True if it changed."""

    def module_is_loadable(self, name: str) -> bool:
        """Whether name is a kernel module this host can load (False when built in or absent)."""

    def load_module(self, name: str) -> None:
        """Load a kernel module now (nothing when it is loaded already)."""


class LxdDaemon(Protocol):
    """The LXD daemon process (and lxcfs) on this host."""

    def start(self, state_dir: Path) -> str:
        """Start LXD unless it answers; say how ('already running', ...)."""

    def answers(self) -> bool:
        """Whether LXD answers on its socket."""

    def lxcfs_is_mounted(self) -> bool:
        """Whether lxcfs serves /proc views to containers."""


class LxdServer(Protocol):
    """LXD's host-wide objects: its storage pool, bridge and profile."""

    def server_version(self) -> str:
        """LXD's version."""

    def get_pool(self, name: str) -> LxdObject | None:
        """A storage pool, or None."""

    def create_pool(self, request: dict[str, Any]) -> None:
        """Create a storage pool."""

    def get_network(self, name: str) -> LxdObject | None:
        """A network, or None."""

    def create_network(self, request: dict[str, Any]) -> None:
        """Create a network."""

    def update_network(self, request: dict[str, Any]) -> None:
        """Change a network's config."""

    def get_profile(self, name: str) -> LxdObject | None:
        """A profile of the default project, or None."""

    def create_profile(self, request: dict[str, Any]) -> None:
        """Create a profile."""

    def update_profile(self, request: dict[str, Any]) -> None:
        """Change a profile."""


class Services(Protocol):
    """The cloche daemon as a service: a systemd unit, or a background process."""

    def systemd_runs(self) -> bool:
        """Whether systemd is PID 1 here."""

    def install_unit(self, path: Path, text: str) -> bool:
        """Write a unit file and reload systemd when it changed; True if it changed."""

    def restart_unit(self, name: str) -> None:
        """Enable and restart a systemd unit."""

    def start_background(
        self, state_dir: Path, name: str, argv: Sequence[str], env: Mapping[str, str]
    ) -> None:
        """Start a process in the background, its pid and log under state_dir."""

    def stop_background(self, state_dir: Path, name: str) -> bool:
        """Stop a background process started by start_background; True if one ran."""

    def get_over_socket(self, socket_path: str, path: str) -> bytes | None:
        """An HTTP GET over a unix socket, or None when nothing answers."""

    def ensure_admin_group(self) -> bool:
        """The cloche-admin group exists; True if it was created."""

    def prepare_socket_directory(self, socket_path: Path) -> None:
        """The socket's directory exists, root-owned, with no stale socket in it."""


class HostIdentities(Protocol):
    """The host's account database."""

    def account(self, uid: int) -> HostAccount | None:
        """The host account with this uid and its groups, or None."""
        ...


class HostNetwork(Protocol):
    """What cloche asks of the host's own network stack."""

    def port_in_use(self, protocol: Literal["tcp", "udp"], port: int) -> bool:
        """True when something on the host already holds port for protocol."""

    def fqdn(self) -> str:
        """The host's fully qualified name."""

    def interface_networks(self) -> dict[str, list[str]]:
        """The IPv4 networks (CIDR) of each of the host's interfaces, by interface name."""


class Clock(Protocol):
    """The time, so schedules can be tested."""

    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
