"""Everything a running daemon's use cases share: config, state, audit, LXD, operations."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cloche.core import ssh_access
from cloche.core.operations import OperationRunner
from cloche.core.ports import BackupCatalog, BackupFiles, InstanceArchives, Restic, Secrets
from cloche.host import caddy, nftables
from cloche.host.backup_files import HostBackupFiles
from cloche.host.restic import HostRestic
from cloche.host.secrets import HostSecrets
from cloche.model.audit import AuditEvent, JsonValue
from cloche.model.config import ClocheConfig
from cloche.render.instance import project_name
from cloche.runtime.exports import LxdExports
from cloche.runtime.instances import LxdInstances
from cloche.runtime.lxd import Lxd
from cloche.runtime.projects import LxdProjects
from cloche.store.audit import AuditLog
from cloche.store.backup_catalog import SqliteBackupCatalog
from cloche.store.database import Database


class JumpAccounts(Protocol):
    """The host side of SSH access (a fake in unit tests, so they never touch host accounts)."""

    def converge(self, database: Database, user: str) -> None:
        """Make the user's jump account and its allowed forwards match the database."""

    def remove(self, user: str) -> None:
        """Remove the user's jump account."""


class HostJumpAccounts:
    """Jump accounts on this host's sshd."""

    def converge(self, database: Database, user: str) -> None:
        """Make the user's jump account and its allowed forwards match the database."""
        ssh_access.converge_user(database, user)

    def remove(self, user: str) -> None:
        """Remove the user's jump account."""
        ssh_access.remove_user(user)


class Firewall(Protocol):
    """The host's nftables table inet cloche (a fake in unit tests, so they never load rules)."""

    def current(self) -> str | None:
        """The live table's listing, or None when it does not exist."""

    def apply(self, text: str) -> None:
        """Check and load an nft script that replaces the table, atomically."""


class HostFirewall:
    """Table inet cloche in this host's root network namespace."""

    def current(self) -> str | None:
        """The live table's listing, or None when it does not exist."""
        return nftables.current_ruleset()

    def apply(self, text: str) -> None:
        """Turn br_netfilter on, then check and load the script (restored on failure)."""
        nftables.ensure_bridge_netfilter()
        nftables.apply_ruleset(text)


class Proxy(Protocol):
    """Caddy, which serves http(s) routes (a fake in unit tests, so they never load configs)."""

    def current(self) -> dict[str, Any] | None:
        """The live config, or None when the proxy does not answer."""

    def load(self, config: dict[str, Any], state_dir: Path) -> None:
        """Load a whole config atomically (started first if it is not running)."""

    def last_loaded(self, state_dir: Path) -> dict[str, Any] | None:
        """The config the last successful load gave it, or None before any."""


class HostProxy:
    """The Caddy that cloche runs on this host, driven through its admin API."""

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


@dataclass
class Context:
    """The daemon's shared state; one per process."""

    config: ClocheConfig
    state_dir: Path
    database: Database
    audit: AuditLog
    operations: OperationRunner
    # The runtime boundary: unit tests replace these factories with fakes.
    instances_factory: Callable[[str, str], LxdInstances] = LxdInstances.for_project
    projects_factory: Callable[[Lxd], LxdProjects] = LxdProjects
    jump_accounts: JumpAccounts = field(default_factory=HostJumpAccounts)
    firewall: Firewall = field(default_factory=HostFirewall)
    proxy: Proxy = field(default_factory=HostProxy)
    # Backups: restic, its repositories' secrets, the catalog, restore files, LXD exports.
    restic: Restic = field(default_factory=HostRestic)
    secrets: Secrets = field(default_factory=HostSecrets)
    backup_catalog: BackupCatalog = field(default_factory=SqliteBackupCatalog)
    backup_files: BackupFiles = field(default_factory=HostBackupFiles)
    archives_factory: Callable[[LxdInstances], InstanceArchives] = LxdExports
    # Findings of the reconciler already written to the audit log by this daemon.
    reported: set[str] = field(default_factory=set)
    _locks: defaultdict[str, threading.Lock] = field(
        default_factory=lambda: defaultdict(threading.Lock)
    )
    _locks_guard: threading.Lock = field(default_factory=threading.Lock)

    def lxd(self, project: str | None = None) -> Lxd:
        """A connection to LXD, in a project when given."""
        return Lxd(self.config.lxd.socket, project=project)

    def instances(self, project: str) -> LxdInstances:
        """The instances of one LXD project."""
        return self.instances_factory(self.config.lxd.socket, project)

    def user_instances(self, user: str) -> LxdInstances:
        """The instances of one user's project."""
        return self.instances(project_name(user))

    def projects(self) -> LxdProjects:
        """LXD's projects and their profiles."""
        return self.projects_factory(self.lxd())

    @contextmanager
    def locked(self, key: str) -> Iterator[None]:
        """Serialise work on one target (a user's template, an environment)."""
        with self._locks_guard:
            lock = self._locks[key]
        with lock:
            yield

    def record(
        self,
        actor: str,
        action: str,
        target: str,
        *,
        succeeded: bool = True,
        details: Mapping[str, JsonValue] | None = None,
    ) -> None:
        """Append one audit event (action in past tense)."""
        self.audit.append(
            AuditEvent(
                actor=actor,
                action=action,
                target=target,
                outcome="succeeded" if succeeded else "failed",
                details=dict(details or {}),
            )
        )


def open_context(config: ClocheConfig, state_dir: Path) -> Context:
    """Open the database (migrating it) and the audit log under state_dir."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    database = Database(state_dir / "cloche.db")
    database.migrate()
    return Context(
        config=config,
        state_dir=state_dir,
        database=database,
        audit=AuditLog(state_dir / "audit.log"),
        operations=OperationRunner(database),
    )
