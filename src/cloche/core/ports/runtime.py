"""LXD's ports: one project's instances, the projects, exports (adapters in runtime/)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from cloche.model.host import LxdObject
from cloche.model.instances import (
    BootReport,
    ExecResult,
    InstanceInfo,
    InstanceState,
    SnapshotInfo,
    TemplateReport,
)
from cloche.model.limits import Limits


class Instances(Protocol):
    """One LXD project's instances (runtime.instances.LxdInstances)."""

    def find(self, name: str) -> InstanceInfo | None:
        """The instance named name, or None."""

    def get(self, name: str) -> InstanceInfo:
        """The instance named name; NotFound when it does not exist."""

    def state(self, name: str) -> InstanceState:
        """Status, IPv4 address on eth0, memory use and process count of an instance."""

    def states(self) -> dict[str, InstanceState]:
        """The state of every instance of the project, in one request (for listings)."""

    def create_from_template(
        self, request: Mapping[str, Any], timeout: float = 120
    ) -> InstanceInfo:
        """Create an environment as a copy-on-write copy of the user's template (no remap)."""

    def ensure_template(
        self, request: Mapping[str, Any], boot_timeout: float = 120
    ) -> TemplateReport:
        """Make the user's template: created from the image, booted once (shifted), stopped."""

    def start(self, name: str, timeout: float = 60) -> None:
        """Start an instance (no-op when running); boot progress is wait_until_booted's job."""

    def stop(self, name: str, timeout: float = 30, force_timeout: float = 60) -> str:
        """Stop gracefully within timeout seconds, then by force; say which it took."""

    def delete(self, name: str, timeout: float = 120) -> bool:
        """Delete an instance whatever its state; False when there was none."""

    def wait_until_booted(self, name: str, timeout: float = 120) -> BootReport:
        """Wait until systemd reports running (or degraded); BootFailure if it stops or stalls."""

    def change_devices(
        self,
        name: str,
        add: Mapping[str, Mapping[str, str]],
        remove: Sequence[str] = (),
    ) -> None:
        """Add or replace, and remove, devices of the instance itself (profiles' stay)."""

    def set_config(self, name: str, values: Mapping[str, str]) -> None:
        """Set keys of the instance's own config (the others stay)."""

    def set_limits(self, name: str, limits: Limits) -> InstanceInfo:
        """Change CPU, memory, process and root disk limits (applied live when running)."""

    def exec(
        self,
        name: str,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        user: int | None = None,
        group: int | None = None,
        cwd: str | None = None,
        environment: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        """Run argv inside a running instance (as uid/gid when given) and collect its output."""

    def snapshot(self, name: str, snapshot: str, timeout: float = 300) -> SnapshotInfo:
        """Take a stateless snapshot of an instance (running or not); Conflict if taken."""

    def list_snapshots(self, name: str) -> tuple[SnapshotInfo, ...]:
        """Every snapshot of an instance, oldest first."""

    def require_snapshot(self, name: str, snapshot: str) -> SnapshotInfo:
        """The snapshot of an instance; NotFound when it does not exist."""

    def delete_snapshot(self, name: str, snapshot: str, timeout: float = 120) -> None:
        """Delete one snapshot of an instance; NotFound when it does not exist."""

    def restore_snapshot(self, name: str, snapshot: str, timeout: float = 300) -> None:
        """Put an instance back to a snapshot (files, config, devices) in place."""

    def create_from_snapshot(
        self, request: Mapping[str, Any], timeout: float = 300
    ) -> InstanceInfo:
        """Create an instance (stopped) as a copy of another's snapshot ("instance/snapshot")."""

    # Last: inside the class, 'list' names this method once it is defined.
    def list(self) -> list[InstanceInfo]:
        """Every instance of the project (templates included), sorted by name."""


class Projects(Protocol):
    """LXD's projects (one per user) and their profiles (runtime.projects.LxdProjects)."""

    def get_project(self, name: str) -> LxdObject | None:
        """The project named name (description and config), or None."""

    def list_projects(self, prefix: str = "") -> list[str]:
        """Names of the projects whose name starts with prefix, sorted."""

    def ensure_project(self, request: dict[str, Any]) -> str:
        """Create the project, or replace its description and config; created/updated/kept."""

    def ensure_profiles(self, project: str, requests: list[dict[str, Any]]) -> Mapping[str, str]:
        """Create or update each profile of requests inside project; what was done to each."""

    def delete_project(self, name: str, timeout: float = 120) -> None:
        """Delete a project, its templates and profiles; Conflict while environments remain."""


class Exports(Protocol):
    """Backup snapshots, exports and imports of one project's instances (runtime.exports)."""

    def create_snapshot(self, name: str, snapshot: str) -> None:
        """Take a (stateless) snapshot of an instance."""

    def delete_snapshot(self, name: str, snapshot: str) -> None:
        """Delete a snapshot (no error when it is already gone)."""

    def export(self, name: str, backup: str) -> AbstractContextManager[Iterator[bytes]]:
        """An uncompressed export of the instance alone, as a stream of chunks while open."""

    def import_backup(self, name: str, tarball: Path, pool: str) -> None:
        """Create the instance name (stopped) from an exported tarball."""

    def reconfigure_import(
        self, name: str, eth0: dict[str, str], *, forget_mac: bool, new_identity: bool
    ) -> None:
        """Give an imported instance its eth0 (address); a clone also a new MAC and identity."""
