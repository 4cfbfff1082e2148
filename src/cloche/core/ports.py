"""The ports: every effect a use case has on the world, as a typed Protocol.

Use cases in core/ reach LXD, the host and the state store only through these. The adapters
live in host/, runtime/ and store/; core/context.py is the one core module that wires them
(unit tests wire fakes instead). The values that cross a port are model/ types.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from cloche.model.backups import RESTIC_TIMEOUT_SECONDS, BackupRecord, Repository
from cloche.model.host import CaddyService, LxdObject, PathKind
from cloche.model.images import BuildRequest, CachedImage, ImageInfo
from cloche.model.instances import (
    BootReport,
    ExecResult,
    InstanceInfo,
    InstanceState,
    SnapshotInfo,
    TemplateReport,
)
from cloche.model.limits import Limits
from cloche.model.process import Completed
from cloche.model.records import (
    UNSET,
    EnvironmentRecord,
    EnvironmentStatus,
    OperationRecord,
    OperationStatus,
    Profile,
    Role,
    RouteRecord,
    SshKeyRecord,
    Unset,
    UserRecord,
)

# --- state store (store/) -------------------------------------------------------------------
# The adapter is cloche.store.database.Database. `list` is a method name here, so inside these
# classes the list type is spelled builtins.list.


class UserStore(Protocol):
    """Users (tenants) and their SSH keys; each user's host uid range is allocated on add."""

    def add(
        self,
        name: str,
        *,
        role: Role = "member",
        max_envs: int,
        cpu: int,
        memory_bytes: int,
        disk_bytes: int,
        processes: int | None = None,
        uid_size: int = ...,
        uid_first: int = ...,
    ) -> UserRecord:
        """Add a user with the lowest free uid range; Conflict if the name is taken."""

    def get(self, name: str) -> UserRecord:
        """The user named name; NotFound if there is none."""

    def list(self) -> builtins.list[UserRecord]:
        """Every user, by name."""

    def update_quotas(
        self,
        name: str,
        *,
        max_envs: int | Unset = UNSET,
        cpu: int | Unset = UNSET,
        memory_bytes: int | Unset = UNSET,
        disk_bytes: int | Unset = UNSET,
        processes: int | Unset | None = UNSET,
    ) -> UserRecord:
        """Change the quotas given; return the updated user."""

    def delete(self, name: str) -> None:
        """Delete a user and their keys; Conflict while they have environments."""

    def add_key(
        self, user: str, fingerprint: str, public_key: str, comment: str = ""
    ) -> SshKeyRecord:
        """Record one of a user's SSH public keys; Conflict if they already have it."""

    def remove_key(self, user: str, fingerprint: str) -> None:
        """Forget one of a user's keys; NotFound if they do not have it."""

    def list_keys(self, user: str | None = None) -> builtins.list[SshKeyRecord]:
        """A user's keys (every user's when user is None), oldest first."""


class EnvironmentStore(Protocol):
    """What cloche records of each environment, its egress policy included."""

    def add(
        self,
        user: str,
        name: str,
        *,
        image: str,
        profile: Profile,
        cpu: int,
        memory_bytes: int,
        disk_bytes: int,
        processes: int,
        status: EnvironmentStatus = "creating",
        state_hint: str | None = None,
        address: str | None = None,
        host_keys: Mapping[str, str] | None = None,
        snapshot_policy: Mapping[str, int] | None = None,
        egress: str = ...,
    ) -> EnvironmentRecord:
        """Record a new environment; Conflict if the name or address is taken, QuotaExceeded."""

    def get(self, user: str, name: str) -> EnvironmentRecord:
        """The environment user/name; NotFound if there is none."""

    def list(self, user: str | None = None) -> builtins.list[EnvironmentRecord]:
        """A user's environments (everyone's when user is None), by user then name."""

    def count(self, user: str) -> int:
        """How many environments the user has, in any status."""

    def update(
        self,
        user: str,
        name: str,
        *,
        image: str | Unset = UNSET,
        profile: Profile | Unset = UNSET,
        cpu: int | Unset = UNSET,
        memory_bytes: int | Unset = UNSET,
        disk_bytes: int | Unset = UNSET,
        processes: int | Unset = UNSET,
        status: EnvironmentStatus | Unset = UNSET,
        state_hint: str | Unset | None = UNSET,
        address: str | Unset | None = UNSET,
        host_keys: Mapping[str, str] | Unset | None = UNSET,
        snapshot_policy: Mapping[str, int] | Unset | None = UNSET,
        egress: str | Unset = UNSET,
    ) -> EnvironmentRecord:
        """Change the fields given (None clears a nullable one); return the updated record."""

    def delete(self, user: str, name: str) -> None:
        """Forget the environment user/name; NotFound if there is none."""


class RouteStore(Protocol):
    """Published routes; an endpoint belongs to one environment at most."""

    def add(self, user: str, name: str, spec: str, endpoint: str) -> RouteRecord:
        """Store a published route; Conflict when its endpoint is taken."""

    def remove(self, user: str, name: str, spec: str) -> RouteRecord:
        """Forget one route of user/name; NotFound when it is not published there."""

    def list(self, user: str | None = None, name: str | None = None) -> builtins.list[RouteRecord]:
        """Published routes, of one user or one environment when given, in a stable order."""


class OperationStore(Protocol):
    """Long-running operations: their progress and how they ended."""

    def create(self, kind: str, target: str, progress: str = "") -> OperationRecord:
        """Start tracking a running operation under a new id."""

    def update(
        self,
        operation_id: str,
        *,
        status: OperationStatus | Unset = UNSET,
        progress: str | Unset = UNSET,
        error: str | Unset | None = UNSET,
    ) -> OperationRecord:
        """Report progress or the end of an operation; Conflict once it has finished."""

    def get(self, operation_id: str) -> OperationRecord:
        """The operation with this id; NotFound if there is none."""

    def list(
        self,
        *,
        status: OperationStatus | None = None,
        target: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[OperationRecord]:
        """Operations, newest first, optionally only those with this status or target."""

    def fail_unfinished(self, error: str) -> int:
        """Mark every running operation failed; return how many."""


class StateStore(Protocol):
    """cloche's state: the four aggregates over one database."""

    @property
    def users(self) -> UserStore:
        """Users and their SSH keys."""

    @property
    def environments(self) -> EnvironmentStore:
        """Environment records."""

    @property
    def routes(self) -> RouteStore:
        """Published routes."""

    @property
    def operations(self) -> OperationStore:
        """Long-running operations."""

    def migrate(self, up_to: int | None = None) -> int:
        """Bring the schema to up_to (default: the latest); return the version reached."""

    def close(self) -> None:
        """Close the store; it cannot be used afterwards."""


# --- LXD instances and projects (runtime/) --------------------------------------------------


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


# --- backups: restic, secrets, exports, the catalog ------------------------------------------


class Restic(Protocol):
    """restic against one repository; its URL, password and keys go in restic's environment.

    With check (always for a stream), a failure raises one sentence naming the repository:
    Invalid for a wrong password, NotFound for a missing repository, HostFailure otherwise.
    """

    def run(
        self,
        state_dir: Path,
        repository: Repository,
        arguments: Sequence[str],
        *,
        doing: str,
        timeout: float = RESTIC_TIMEOUT_SECONDS,
        check: bool = True,
    ) -> Completed:
        """Run 'restic ARGUMENTS' with its output captured."""

    def run_with_stdin(
        self,
        state_dir: Path,
        repository: Repository,
        arguments: Sequence[str],
        chunks: Iterable[bytes],
        *,
        doing: str,
    ) -> Completed:
        """Run 'restic ARGUMENTS' reading chunks on its stdin (a backup)."""

    def run_to_file(
        self,
        state_dir: Path,
        repository: Repository,
        arguments: Sequence[str],
        path: Path,
        *,
        doing: str,
    ) -> Completed:
        """Run 'restic ARGUMENTS' with its stdout written to path (a dump)."""


class Secrets(Protocol):
    """The root-only file of backup repositories and their passwords and keys."""

    def load_repositories(self, state_dir: Path) -> dict[str, Repository]:
        """Every repository by name ({} before the first is added)."""

    def save_repository(self, state_dir: Path, repository: Repository) -> bool:
        """Add or replace a repository; False when it was already stored exactly so."""

    def remove_repository(self, state_dir: Path, name: str) -> bool:
        """Forget a repository's entry; False when there was none."""

    def new_password(self) -> str:
        """A generated repository password."""


class BackupCatalog(Protocol):
    """The figures restic printed for each backup cloche made (restic's snapshots lack them)."""

    def add(self, state_dir: Path, record: BackupRecord) -> None:
        """Remember one backup."""

    def list(self, state_dir: Path, repository: str | None = None) -> list[BackupRecord]:
        """Every remembered backup (of one repository when given), oldest first."""

    def forget(self, state_dir: Path, repository: str, keep_ids: set[str]) -> int:
        """Drop the backups of repository whose id is not in keep_ids; return how many."""


class BackupFiles(Protocol):
    """The files of backups under the state directory: restore files and the schedule's stamp."""

    def restore_file(self, state_dir: Path, prefix: str) -> AbstractContextManager[Path]:
        """A new empty private file for a backup's tarball, removed when the block ends."""

    def open_archive(self, path: Path) -> AbstractContextManager[IO[bytes]]:
        """A restore file, open for reading."""

    def drop_restore_files(self, state_dir: Path) -> int:
        """Remove the restore files a stopped daemon left; return how many."""

    def local_repository_exists(self, url: str) -> bool:
        """True when a local repository has been initialised at url (its config is there)."""

    def last_round(self, state_dir: Path) -> float | None:
        """When the last scheduled round was stamped (seconds since the epoch), or None."""

    def stamp_round(self, state_dir: Path, at: float) -> None:
        """Stamp a scheduled round at the time at."""


class ImageBuilder(Protocol):
    """Builds of the base image's tarballs into the host's cache (host/image_build.py)."""

    def architecture(self) -> str:
        """The host's architecture as LXD names it (x86_64, aarch64)."""
        ...

    def cached_image(self, cache_key: str) -> CachedImage | None:
        """The complete cache entry for cache_key, or None when there is none."""
        ...

    def check_release(self, release: str) -> None:
        """Raise Invalid when the builder does not know how to bootstrap release."""
        ...

    def build(self, request: BuildRequest, progress: Callable[[str], None]) -> CachedImage:
        """Build the request into the cache; the entry appears only when complete."""
        ...

    def fingerprint(self, entry: CachedImage) -> str:
        """The fingerprint LXD will give the entry's split image."""
        ...


class ImageStore(Protocol):
    """The images LXD holds and their aliases (runtime/images.py)."""

    def find(self, fingerprint: str) -> ImageInfo | None:
        """The image with this fingerprint, or None."""
        ...

    def find_by_alias(self, alias: str) -> ImageInfo | None:
        """The image an alias points at, or None when the alias does not exist."""
        ...

    def import_split_image(self, metadata_path: Path, rootfs_path: Path) -> ImageInfo:
        """Upload a metadata tarball and a rootfs tarball as one image; return it."""
        ...

    def point_alias(self, alias: str, fingerprint: str, description: str) -> None:
        """Create the alias, or move it to fingerprint when it points elsewhere."""
        ...

    def list_images(self) -> list[ImageInfo]:
        """Every image, newest first."""
        ...


class AptSources(Protocol):
    """The host's own apt sources, where the default mirror comes from (host/apt_sources.py)."""

    def sources_files(self) -> list[tuple[str, str]]:
        """(file name, text) of every apt sources file, in the order apt reads them."""
        ...

    def architecture(self) -> str | None:
        """The host's architecture as dpkg names it (None when unknown)."""
        ...


@dataclass(frozen=True)
class ImagePorts:
    """What the image use cases (core/images.py) act through."""

    builder: ImageBuilder
    store: ImageStore
    apt_sources: AptSources


# --- host: firewall, proxy, sshd and jump accounts, packages, kernel, logs, ports, clock ----


class Files(Protocol):
    """Host and state files, written atomically (readers see the old or the new, never half)."""

    def read(self, path: Path) -> str | None:
        """The file's text, or None when it does not exist."""

    def write(self, path: Path, content: str | bytes, mode: int = 0o644) -> None:
        """Replace the file atomically with content."""

    def kind(self, path: Path) -> PathKind:
        """Whether path is missing, a block device or something else."""


class Firewall(Protocol):
    """The host's nftables table inet cloche."""

    def current(self) -> str | None:
        """The live table's listing, or None when it does not exist."""

    def apply(self, text: str) -> None:
        """Check and load an nft script that replaces the table, atomically."""


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
        """The socket's directory reachable by root and cloche-admin only; no stale socket."""


class HostNetwork(Protocol):
    """What cloche asks of the host's own network stack."""

    def port_in_use(self, protocol: Literal["tcp", "udp"], port: int) -> bool:
        """True when something on the host already holds port for protocol."""

    def fqdn(self) -> str:
        """The host's fully qualified name."""


class Clock(Protocol):
    """The time, so schedules can be tested."""

    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
