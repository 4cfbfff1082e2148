"""The one core module that wires adapters to ports: what a running daemon's use cases share."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cloche.core.operations import OperationRunner
from cloche.core.ports import (
    BackupCatalog,
    BackupFiles,
    Clock,
    Exports,
    Files,
    Firewall,
    HostIdentities,
    HostNetwork,
    ImagePorts,
    Instances,
    JumpAccounts,
    KernelSettings,
    LxdDaemon,
    LxdServer,
    Packages,
    Projects,
    Proxy,
    Restic,
    Secrets,
    Services,
    Sshd,
)
from cloche.host.adapters import (
    HostAccountDatabase,
    HostFiles,
    HostFirewall,
    HostJumpAccounts,
    HostKernelSettings,
    HostLxdDaemon,
    HostNetworkStack,
    HostPackages,
    HostProxy,
    HostServices,
    HostSshd,
    SystemClock,
)
from cloche.host.apt_sources import HostAptSources
from cloche.host.backup_files import HostBackupFiles
from cloche.host.files import ensure_private_directory, write_atomically
from cloche.host.image_build import DebootstrapImageBuilder
from cloche.host.restic import HostRestic
from cloche.host.secrets import HostSecrets
from cloche.model.audit import AuditEvent, JsonValue
from cloche.model.config import ClocheConfig
from cloche.render.instance import project_name
from cloche.runtime.exports import LxdExports
from cloche.runtime.images import LxdImageStore
from cloche.runtime.instances import LxdInstances
from cloche.runtime.lxd import Lxd
from cloche.runtime.projects import LxdProjects
from cloche.store.audit import AuditLog
from cloche.store.backup_catalog import SqliteBackupCatalog
from cloche.store.database import Database


def _lxd_server(socket_path: str) -> LxdServer:
    return Lxd(socket_path)


def _lxd_projects(socket_path: str) -> Projects:
    return LxdProjects(Lxd(socket_path))


@dataclass
class HostEffects:
    """The host's ports, wired to this host's adapters (unit tests pass fakes)."""

    files: Files = field(default_factory=HostFiles)
    firewall: Firewall = field(default_factory=HostFirewall)
    proxy: Proxy = field(default_factory=HostProxy)
    sshd: Sshd = field(default_factory=HostSshd)
    jump_accounts: JumpAccounts = field(default_factory=HostJumpAccounts)
    packages: Packages = field(default_factory=HostPackages)
    kernel: KernelSettings = field(default_factory=HostKernelSettings)
    lxd_daemon: LxdDaemon = field(default_factory=HostLxdDaemon)
    services: Services = field(default_factory=HostServices)
    network: HostNetwork = field(default_factory=HostNetworkStack)
    identities: HostIdentities = field(default_factory=HostAccountDatabase)
    clock: Clock = field(default_factory=SystemClock)
    restic: Restic = field(default_factory=HostRestic)
    secrets: Secrets = field(default_factory=HostSecrets)
    backup_files: BackupFiles = field(default_factory=HostBackupFiles)
    lxd_server: Callable[[str], LxdServer] = _lxd_server


@dataclass
class Context:
    """The daemon's shared state; one per process."""

    config: ClocheConfig
    state_dir: Path
    database: Database
    audit: AuditLog
    operations: OperationRunner
    # The runtime boundary: unit tests replace these factories with fakes.
    instances_factory: Callable[[str, str], Instances] = LxdInstances.for_project
    projects_factory: Callable[[str], Projects] = _lxd_projects
    exports_factory: Callable[[str, str], Exports] = LxdExports.for_project
    host: HostEffects = field(default_factory=HostEffects)
    backup_catalog: BackupCatalog = field(default_factory=SqliteBackupCatalog)
    # Findings of the reconciler already written to the audit log by this daemon.
    reported: set[str] = field(default_factory=set)
    # Running environments whose guest claims addresses other than the assigned one (last pass).
    address_mismatches: list[str] = field(default_factory=list)
    _locks: defaultdict[str, threading.Lock] = field(
        default_factory=lambda: defaultdict(threading.Lock)
    )
    _locks_guard: threading.Lock = field(default_factory=threading.Lock)

    def instances(self, project: str) -> Instances:
        """The instances of one LXD project."""
        return self.instances_factory(self.config.lxd.socket, project)

    def user_instances(self, user: str) -> Instances:
        """The instances of one user's project."""
        return self.instances(project_name(user))

    def user_exports(self, user: str) -> Exports:
        """Exports and imports of one user's instances (for backups)."""
        return self.exports_factory(self.config.lxd.socket, project_name(user))

    def projects(self) -> Projects:
        """LXD's projects and their profiles."""
        return self.projects_factory(self.config.lxd.socket)

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


def open_context(config: ClocheConfig, state_dir: Path, host: HostEffects | None = None) -> Context:
    """Open the database (migrating it) and the audit log under state_dir."""
    ensure_private_directory(state_dir)  # whoever made it, with or without systemd
    database = Database(state_dir / "cloche.db")
    database.migrate()
    return Context(
        config=config,
        state_dir=state_dir,
        database=database,
        audit=AuditLog(state_dir / "audit.log", write_atomically, database.audit_head),
        operations=OperationRunner(database),
        host=host or HostEffects(),
    )


def image_ports(config: ClocheConfig, state_dir: Path) -> ImagePorts:
    """The adapters the image use cases act through on this host (they need no daemon)."""
    return ImagePorts(
        builder=DebootstrapImageBuilder(state_dir),
        store=LxdImageStore(config.lxd.socket),
        apt_sources=HostAptSources(),
    )
