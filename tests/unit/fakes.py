"""In-memory fakes for the runtime boundary (LXD instances and projects), and a Context on them.

One FakeLxd holds every project, its profiles and its instances, and records each call made
through the FakeInstances (one project's view) and FakeProjects objects the Context's factories
hand out. Tests tell it to fail a step with `fail_boot` or `fail[method] = error`, and can run a
hook just before a method acts with `before[method] = callable(project, *args)`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from starlette.exceptions import StarletteDeprecationWarning

from cloche.core import users
from cloche.core.context import Context, HostEffects
from cloche.core.operations import OperationRunner
from cloche.core.ports import BackupCatalog
from cloche.host.adapters import HostNetworkStack
from cloche.host.files import write_atomically
from cloche.model.audit import AuditEvent
from cloche.model.bans import Ban
from cloche.model.commands import NewEnvironment, NewUser
from cloche.model.config import ClocheConfig
from cloche.model.errors import ClocheError, Conflict, HostFailure, Invalid, NotFound
from cloche.model.host import CaddyService, LxdObject
from cloche.model.instances import (
    OWNER_KEY,
    ROLE_KEY,
    ROLE_TEMPLATE,
    BootFailure,
    BootReport,
    ExecResult,
    InstanceInfo,
    InstanceState,
    SnapshotInfo,
    TemplateReport,
)
from cloche.model.limits import Limits
from cloche.model.records import OperationRecord
from cloche.model.units import format_size
from cloche.store.audit import AuditLog
from cloche.store.database import Database
from tests.unit.backup_fakes import FakeArchives, FakeBackupCatalog, FakeRestic, FakeSecrets

DATA = Path(__file__).parent / "data"
GIB = 1024**3
HOST_KEY_LINES = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyEd25519 root@env\n"
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIHostKeyEcdsa root@env\n"
)
HOST_KEYS = {
    "ssh-ed25519": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyEd25519",
    "ecdsa-sha2-nistp256": "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIHostKeyEcdsa",
}


def public_key(name: str) -> str:
    """The text of one of the test keys in tests/unit/data (ed25519, ecdsa, rsa1024, rsa3072)."""
    return (DATA / f"{name}.pub").read_text().strip()


@dataclass
class FakeInstance:
    """One instance as the fake keeps it."""

    info: InstanceInfo
    ipv4: str
    request: dict[str, Any] = field(default_factory=dict)
    # Addresses a (hostile) guest added to eth0 besides its own.
    extra_addresses: tuple[str, ...] = ()
    # Snapshot name -> when it was taken (UTC).
    snapshots: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    """One call made through the fakes: project (None for FakeProjects), method, arguments."""

    project: str | None
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


ExecHandler = Callable[[str, str, Sequence[str], dict[str, Any]], ExecResult | None]


class FakeLxd:
    """Everything the fakes share: projects, profiles, instances, recorded calls, failures."""

    def __init__(self) -> None:
        self.projects: dict[str, LxdObject] = {}
        self.profiles: dict[str, dict[str, dict[str, Any]]] = {}
        self.instances: dict[str, dict[str, FakeInstance]] = {}
        self.calls: list[Call] = []
        self.fail: dict[str, ClocheError] = {}
        self.fail_boot = False
        self.before: dict[str, Callable[..., None]] = {}
        # Answers exec before the default one does; return None to fall through.
        self.exec_handler: ExecHandler | None = None
        self._lock = threading.RLock()
        self._next_address = 10
        # When snapshots are taken (None: the real clock); tests set it to plan at a fixed time.
        self.now: datetime | None = None

    # Recording and failing -------------------------------------------------------------

    def called(self, project: str | None, method: str, *args: Any, **kwargs: Any) -> None:
        """Record a call, run its hook, raise the failure set for it."""
        with self._lock:
            self.calls.append(Call(project, method, args, dict(kwargs)))
        hook = self.before.get(method)
        if hook is not None:
            hook(project, *args)
        error = self.fail.get(method)
        if error is not None:
            raise error

    def methods(self, project: str | None = None) -> list[str]:
        """The names of the methods called (in one project when given), in order."""
        return [call.method for call in self.calls if project is None or call.project == project]

    def calls_of(self, method: str) -> list[Call]:
        """Every call of one method, in order."""
        return [call for call in self.calls if call.method == method]

    # Building state directly (for tests of what a crash leaves behind) -----------------

    def add_instance(
        self,
        project: str,
        name: str,
        *,
        role: str = "environment",
        owner: str | None = None,
        status: str = "Stopped",
    ) -> FakeInstance:
        """Put an instance in a project without going through the fake's methods."""
        config = {ROLE_KEY: role}
        if owner is not None:
            config[OWNER_KEY] = owner
        with self._lock:
            self._next_address += 1
            instance = FakeInstance(
                info=InstanceInfo(name=name, status=status, profiles=(), config=config),
                ipv4=f"10.120.0.{self._next_address}",
            )
            self.instances.setdefault(project, {})[name] = instance
        return instance

    def instance_names(self, project: str) -> list[str]:
        """Names of the instances of a project, sorted."""
        return sorted(self.instances.get(project, {}))

    # Factories for Context -------------------------------------------------------------

    def exports_factory(self, socket_path: str, project: str) -> FakeArchives:
        """Context.exports_factory: one project's exports, over the same fake instances."""
        return FakeArchives(FakeInstances(self, project))

    def instances_factory(self, socket_path: str, project: str) -> FakeInstances:
        """Context.instances_factory: the socket path is ignored."""
        return FakeInstances(self, project)

    def projects_factory(self, socket_path: str) -> FakeProjects:
        """Context.projects_factory: the socket path is ignored (no connection is made)."""
        return FakeProjects(self)


class FakeInstances:
    """One project's instances; mimics runtime.instances.LxdInstances."""

    def __init__(self, lxd: FakeLxd, project: str) -> None:
        self.fake = lxd
        self.project = project

    @property
    def _store(self) -> dict[str, FakeInstance]:
        return self.fake.instances.setdefault(self.project, {})

    def _call(self, method: str, *args: Any, **kwargs: Any) -> None:
        self.fake.called(self.project, method, *args, **kwargs)

    def _require(self, name: str) -> FakeInstance:
        instance = self._store.get(name)
        if instance is None:
            raise NotFound(
                f"There is no environment {name!r} in project {self.project}; check the name."
            )
        return instance

    def _set_status(self, name: str, status: str) -> None:
        instance = self._require(name)
        instance.info = dataclasses.replace(instance.info, status=status)

    # Reading ---------------------------------------------------------------------------

    def find(self, name: str) -> InstanceInfo | None:
        self._call("find", name)
        instance = self._store.get(name)
        return None if instance is None else instance.info

    def get(self, name: str) -> InstanceInfo:
        self._call("get", name)
        return self._require(name).info

    def list(self) -> list[InstanceInfo]:
        self._call("list")
        return sorted((i.info for i in self._store.values()), key=lambda info: info.name)

    def state(self, name: str) -> InstanceState:
        self._call("state", name)
        instance = self._require(name)
        running = instance.info.running
        return InstanceState(
            name=name,
            status=instance.info.status,
            addresses=(instance.ipv4, *instance.extra_addresses) if running else (),
            memory_bytes=100 * 1024**2 if running else 0,
            processes=20 if running else 0,
            pid=4242 if running else 0,
        )

    def states(self) -> dict[str, InstanceState]:
        self._call("states")
        return {name: self.state(name) for name in list(self._store)}

    def status(self, name: str) -> str:
        return self._require(name).info.status

    # Creating --------------------------------------------------------------------------

    def create(self, request: Mapping[str, Any], timeout: float = 300) -> InstanceInfo:
        self._call("create", dict(request))
        return self._make(request)

    def _make(self, request: Mapping[str, Any]) -> InstanceInfo:
        name = str(request["name"])
        if name in self._store:
            raise Conflict(f"Instance {name!r} already exists in project {self.project}.")
        instance = self.fake.add_instance(self.project, name)
        instance.info = InstanceInfo(
            name=name,
            status="Stopped",
            profiles=tuple(request.get("profiles") or ()),
            config={key: str(value) for key, value in (request.get("config") or {}).items()},
            devices={key: dict(value) for key, value in (request.get("devices") or {}).items()},
        )
        instance.request = dict(request)
        # As LXD's DHCP does, the guest gets the static address its NIC asks for.
        static = (instance.info.devices.get("eth0") or {}).get("ipv4.address")
        if static:
            instance.ipv4 = static
        return instance.info

    def create_from_template(
        self, request: Mapping[str, Any], timeout: float = 120
    ) -> InstanceInfo:
        self._call("create_from_template", dict(request))
        source = request.get("source") or {}
        if source.get("type") != "copy":
            raise Invalid(f"Environment {request.get('name')!r} must be copied from a template.")
        template = self._require(str(source["source"]))
        if template.info.running:
            raise Conflict(f"Template {template.info.name!r} is running.")
        return self._make(request)

    def ensure_template(
        self, request: Mapping[str, Any], boot_timeout: float = 120
    ) -> TemplateReport:
        self._call("ensure_template", dict(request))
        name = str(request["name"])
        if name in self._store:
            return TemplateReport(name=name, action="kept")
        self._make(request)
        return TemplateReport(name=name, action="created")

    # Life cycle ------------------------------------------------------------------------

    def start(self, name: str, timeout: float = 60) -> None:
        self._call("start", name)
        self._set_status(name, "Running")

    def stop(self, name: str, timeout: float = 30, force_timeout: float = 60) -> str:
        self._call("stop", name)
        if self._require(name).info.status == "Stopped":
            return "already stopped"
        self._set_status(name, "Stopped")
        return "stopped"

    def restart(self, name: str, timeout: float = 30) -> None:
        self._call("restart", name)
        self._set_status(name, "Running")

    def delete(self, name: str, timeout: float = 120) -> bool:
        self._call("delete", name)
        return self._store.pop(name, None) is not None

    def wait_until_booted(self, name: str, timeout: float = 120) -> BootReport:
        self._call("wait_until_booted", name)
        instance = self._require(name)
        if self.fake.fail_boot or not instance.info.running:
            raise BootFailure(
                f"Environment {name!r} in project {self.project} stopped while booting "
                "(status Stopped, console ends with 'Kernel panic'); read its console log.",
                "systemd 252 running in system mode\nFailed to mount /proc\nKernel panic\n",
            )
        return BootReport(name, "running", (), 0.0)

    # Limits and inside -----------------------------------------------------------------

    def change_devices(
        self,
        name: str,
        add: Mapping[str, Mapping[str, str]],
        remove: Sequence[str] = (),
    ) -> None:
        self._call("change_devices", name, dict(add), tuple(remove))
        instance = self._require(name)
        devices = {key: dict(value) for key, value in instance.info.devices.items()}
        for device in remove:
            devices.pop(device, None)
        devices.update({device: dict(config) for device, config in add.items()})
        instance.info = dataclasses.replace(instance.info, devices=devices)

    def set_config(self, name: str, values: Mapping[str, str]) -> None:
        self._call("set_config", name, dict(values))
        instance = self._require(name)
        config = {**instance.info.config, **values}
        instance.info = dataclasses.replace(instance.info, config=config)

    def set_limits(self, name: str, limits: Limits) -> InstanceInfo:
        self._call("set_limits", name, limits)
        instance = self._require(name)
        config = {
            **instance.info.config,
            "limits.cpu": str(limits.cpu),
            "limits.memory": format_size(limits.memory_bytes),
            "limits.processes": str(limits.processes),
        }
        instance.info = dataclasses.replace(instance.info, config=config)
        return instance.info

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
        options = {
            "stdin": stdin,
            "user": user,
            "group": group,
            "cwd": cwd,
            "environment": dict(environment) if environment is not None else None,
            "timeout": timeout,
        }
        self._call("exec", name, list(argv), **options)
        if not argv:
            raise Invalid("Give a command to run; the argument list is empty.")
        instance = self._require(name)
        if not instance.info.running:
            raise Conflict(f"Instance {name!r} is not running.")
        if self.fake.exec_handler is not None:
            answer = self.fake.exec_handler(self.project, name, list(argv), options)
            if answer is not None:
                return answer
        if list(argv) == ["sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub"]:
            return ExecResult(0, HOST_KEY_LINES.encode(), b"")
        return ExecResult(0, b"", b"")

    def push_file(
        self, name: str, path: str, data: bytes, *, mode: int = 0o644, uid: int = 0, gid: int = 0
    ) -> None:
        self._call("push_file", name, path, data, mode=mode, uid=uid, gid=gid)
        self._require(name)

    # Snapshots -------------------------------------------------------------------------

    def snapshot(self, name: str, snapshot: str, timeout: float = 300) -> SnapshotInfo:
        self._call("snapshot", name, snapshot)
        instance = self._require(name)
        if snapshot in instance.snapshots:
            raise Conflict(
                f"Snapshot {snapshot!r} of {name!r} already exists; choose another name."
            )
        instance.snapshots[snapshot] = self.fake.now or datetime.now(UTC)
        return SnapshotInfo(snapshot, instance.snapshots[snapshot])

    def list_snapshots(self, name: str) -> tuple[SnapshotInfo, ...]:
        self._call("list_snapshots", name)
        taken = self._require(name).snapshots
        return tuple(
            SnapshotInfo(snapshot, at)
            for snapshot, at in sorted(taken.items(), key=lambda item: (item[1], item[0]))
        )

    def require_snapshot(self, name: str, snapshot: str) -> SnapshotInfo:
        self._call("require_snapshot", name, snapshot)
        at = self._require(name).snapshots.get(snapshot)
        if at is None:
            raise NotFound(f"Environment {name!r} has no snapshot {snapshot!r}; list them.")
        return SnapshotInfo(snapshot, at)

    def delete_snapshot(self, name: str, snapshot: str, timeout: float = 120) -> None:
        self._call("delete_snapshot", name, snapshot)
        if self._require(name).snapshots.pop(snapshot, None) is None:
            raise NotFound(f"Environment {name!r} has no snapshot {snapshot!r}; check the name.")

    def restore_snapshot(self, name: str, snapshot: str, timeout: float = 300) -> None:
        # As LXD: a running instance is restarted, a stopped one stays stopped.
        self.require_snapshot(name, snapshot)
        self._call("restore_snapshot", name, snapshot)

    def create_from_snapshot(
        self, request: Mapping[str, Any], timeout: float = 300
    ) -> InstanceInfo:
        self._call("create_from_snapshot", dict(request))
        source = request.get("source") or {}
        instance, _, snapshot = str(source.get("source")).partition("/")
        if source.get("type") != "copy" or not snapshot:
            raise Invalid(f"Environment {request.get('name')!r} must be copied from a snapshot.")
        self.require_snapshot(instance, snapshot)
        return self._make(request)


class FakeProjects:
    """LXD's projects and their profiles; mimics runtime.projects.LxdProjects."""

    def __init__(self, lxd: FakeLxd) -> None:
        self.fake = lxd

    def get_project(self, name: str) -> LxdObject | None:
        self.fake.called(None, "get_project", name)
        return self.fake.projects.get(name)

    def list_projects(self, prefix: str = "") -> list[str]:
        self.fake.called(None, "list_projects", prefix)
        return sorted(name for name in self.fake.projects if name.startswith(prefix))

    def ensure_project(self, request: dict[str, Any]) -> str:
        self.fake.called(None, "ensure_project", request)
        name = request["name"]
        wanted = LxdObject(
            name=name,
            description=request.get("description", ""),
            config={key: str(value) for key, value in request.get("config", {}).items()},
        )
        observed = self.fake.projects.get(name)
        self.fake.projects[name] = wanted
        if observed is None:
            return "created"
        return "kept" if observed == wanted else "updated"

    def ensure_profiles(self, project: str, requests: list[dict[str, Any]]) -> dict[str, str]:
        self.fake.called(None, "ensure_profiles", project, requests)
        if project not in self.fake.projects:
            raise NotFound(f"LXD has no project {project!r}.")
        done = {}
        profiles = self.fake.profiles.setdefault(project, {})
        for request in requests:
            observed = profiles.get(request["name"])
            profiles[request["name"]] = request
            done[request["name"]] = (
                "created" if observed is None else "kept" if observed == request else "updated"
            )
        return done

    def delete_project(self, name: str, timeout: float = 120) -> None:
        self.fake.called(None, "delete_project", name)
        # As the real one: NotFound when absent, Conflict while environments remain.
        if name not in self.fake.projects:
            raise NotFound(f"LXD has no project {name!r}; check the user name.")
        instances = self.fake.instances.get(name, {})
        remaining = [n for n, i in instances.items() if i.info.role != ROLE_TEMPLATE]
        if remaining:
            raise Conflict(
                f"Project {name!r} still holds {len(remaining)} environment(s) "
                f"({', '.join(remaining)}); delete them first."
            )
        self.fake.instances.pop(name, None)
        self.fake.profiles.pop(name, None)
        del self.fake.projects[name]


with warnings.catch_warnings():
    # starlette's TestClient warns about httpx on import; it is the client FastAPI documents.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    # Re-exported so the API tests import it once, behind the filter above.
    from fastapi.testclient import TestClient  # noqa: F401 - re-exported


@dataclass
class FakeJumpAccounts:
    """Records what core asks of the host's jump accounts, and the forwards it would allow."""

    allowed: dict[str, list[str]] = field(default_factory=dict)
    keys_files: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    # Open sessions per account (tests open them); end_sessions ends them and logs who.
    sessions: dict[str, int] = field(default_factory=dict)
    ended: list[str] = field(default_factory=list)

    def ensure(self, user: str) -> None:
        """Remember that the account exists."""
        self.allowed.setdefault(user, [])

    def read_keys(self, user: str) -> str | None:
        """The keys file last written."""
        return self.keys_files.get(user)

    def end_sessions(self, user: str) -> int:
        """End the account's open sessions; return how many there were."""
        self.ended.append(user)
        return self.sessions.pop(user, 0)

    def write_keys(self, user: str, text: str) -> None:
        """Remember the keys file and the destinations its permitopen options allow."""
        self.keys_files[user] = text
        self.allowed[user] = sorted(set(re.findall(r'permitopen="([^"]+)"', text)))

    def remove(self, user: str) -> None:
        """Remember that the account was removed."""
        self.allowed.pop(user, None)
        self.keys_files.pop(user, None)
        self.removed.append(user)


@dataclass
class FakeFirewall:
    """Table inet cloche as a string: what core loaded, never nft (unit tests load no rules)."""

    table: str | None = None
    loads: int = 0
    refuse: str | None = None
    forgotten: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)

    def current(self) -> str | None:
        """The loaded script, standing in for nft's listing of it."""
        return self.table

    def apply(self, text: str) -> None:
        """Remember the script, or refuse it as nft would (the old table stays)."""
        if self.refuse is not None:
            raise HostFailure(f"nft refused the firewall script: {self.refuse}.")
        self.table = text
        self.loads += 1

    def change_elements(self, text: str) -> None:
        """Edit the loaded script's element lines as nft edits its sets (refusing as nft does)."""
        if self.refuse is not None:
            raise HostFailure(f"nft refused the firewall element changes: {self.refuse}.")
        if self.table is None:
            raise HostFailure("nft refused the firewall element changes: no table inet cloche.")
        lines = self.table.splitlines()
        for change in text.splitlines()[1:]:
            verb, _, _, _, name, rest = change.split(" ", 5)
            items = rest.strip("{} ").split(", ")
            lines = _edit_set(lines, name, verb, items)
        self.table = "\n".join(lines) + "\n"
        self.changes.append(text)

    def forget_connections(self, address: str) -> None:
        """Remember whose connections were dropped."""
        self.forgotten.append(address)


def _element_key(text: str) -> str:
    return text.split(" comment ", maxsplit=1)[0].split(" : ", maxsplit=1)[0]


def _edit_set(lines: list[str], name: str, verb: str, items: list[str]) -> list[str]:
    """lines (a rendered nft script) with items added to, or deleted by key from, set name."""
    start = next(i for i, line in enumerate(lines) if line.endswith(f" {name} {{"))
    end = lines.index("\t}", start)
    body = [line for line in lines[start + 1 : end] if line.strip() not in ("elements = {", "}")]
    head = [line for line in body if not line.startswith("\t\t\t")]
    elements = [line.strip().removesuffix(",") for line in body if line.startswith("\t\t\t")]
    keys = {_element_key(element) for element in elements}
    if verb == "delete":
        missing = [item for item in items if item not in keys]
        if missing:
            raise HostFailure(
                f"nft refused the firewall element changes: no {missing[0]} in {name}."
            )
        elements = [element for element in elements if _element_key(element) not in items]
    else:
        clash = [item for item in items if _element_key(item) in keys]
        if clash:
            raise HostFailure(f"nft refused the firewall element changes: {clash[0]} exists.")
        elements += items
    block = ["\t\telements = {", *(f"\t\t\t{element}," for element in elements), "\t\t}"]
    return [*lines[: start + 1], *head, *(block if elements else []), *lines[end:]]


@dataclass
class FakeProxy:
    """Caddy as a dict: the config core loaded, never a process (unit tests run no Caddy)."""

    config: dict[str, Any] | None = None
    # What the last successful load gave it; config (the live one) may be changed by a test.
    loaded: dict[str, Any] | None = None
    loads: int = 0
    refuse: str | None = None
    running: bool = True
    units: list[str | None] = field(default_factory=list)

    def current(self) -> dict[str, Any] | None:
        """The loaded config (None stands for a Caddy that does not answer)."""
        return None if self.config is None else json.loads(json.dumps(self.config))

    def load(self, config: dict[str, Any], state_dir: Path) -> None:
        """Remember config, or refuse it as Caddy would (the old one stays)."""
        if self.refuse is not None:
            raise HostFailure(f"Caddy refused the config: {self.refuse}.")
        self.config = json.loads(json.dumps(config))
        self.loaded = json.loads(json.dumps(config))
        self.loads += 1

    def last_loaded(self, state_dir: Path) -> dict[str, Any] | None:
        """What the last successful load gave it."""
        return None if self.loaded is None else json.loads(json.dumps(self.loaded))

    def service(self, state_dir: Path) -> CaddyService:
        """Caddy as cloche runs it, under state_dir."""
        directory = state_dir.with_name(f"{state_dir.name}-caddy")
        return CaddyService(
            "/usr/bin/caddy",
            str(directory),
            str(directory / "config.json"),
            {"HOME": "x"},
            "caddy",
            "/run/cloche-caddy/admin.sock",
        )

    def ensure_running(self, state_dir: Path, unit_text: str | None) -> str:
        """Start the fake (remembering the unit it was given) unless it runs."""
        if self.running:
            return "already running"
        self.running = True
        self.units.append(unit_text)
        return "started (systemd)" if unit_text else "started (background)"


@dataclass
class FakeServices:
    """The Services port without systemd or processes: it remembers what it was asked."""

    systemd: bool = False
    health: dict[str, Any] | None = None

    def systemd_runs(self) -> bool:
        """Whether the fake plays a systemd host."""
        return self.systemd

    def install_unit(self, path: Path, text: str) -> bool:
        """Nothing is installed."""
        return False

    def restart_unit(self, name: str) -> None:
        """Nothing is restarted."""

    def start_background(
        self, state_dir: Path, name: str, argv: Sequence[str], env: Mapping[str, str]
    ) -> None:
        """Nothing is started."""

    def stop_background(self, state_dir: Path, name: str) -> bool:
        """Nothing ran."""
        return False

    def get_over_socket(self, socket_path: str, path: str) -> bytes | None:
        """The health answer set on the fake, if any."""
        return None if self.health is None else json.dumps(self.health).encode()

    def ensure_admin_group(self) -> bool:
        """The group exists."""
        return False

    def prepare_socket_directory(self, socket_path: Path) -> None:
        """Nothing to prepare."""


@dataclass
class FakeContext(Context):
    """A Context that never connects to LXD: its factories hand out fakes."""

    fake: FakeLxd = field(default_factory=FakeLxd)
    backup_catalog: BackupCatalog = field(default_factory=FakeBackupCatalog)


class FakeNetwork(HostNetworkStack):
    """The host's network stack, with the interfaces of a typical host (no 'ip' is run)."""

    def interface_networks(self) -> dict[str, list[str]]:
        """A loopback, a LAN and the bridge."""
        return {"lo": ["127.0.0.0/8"], "eth0": ["192.0.2.0/24"], "clochebr0": ["10.120.0.0/16"]}


def fake_host() -> HostEffects:
    """Host ports that touch nothing: firewall, proxy, jump accounts and services are fakes."""
    # Restore files and the schedule's stamp stay the real ones, under the test's state_dir.
    return HostEffects(
        firewall=FakeFirewall(),
        proxy=FakeProxy(),
        jump_accounts=FakeJumpAccounts(),
        services=FakeServices(),
        restic=FakeRestic(),
        secrets=FakeSecrets(),
        network=FakeNetwork(),
    )


def make_context(tmp_path: Path, config: ClocheConfig | None = None) -> FakeContext:
    """A Context on a real Database and AuditLog in tmp_path, with fakes at the LXD boundary."""
    state_dir = tmp_path / "state"
    state_dir.mkdir(parents=True, exist_ok=True)
    database = Database(state_dir / "cloche.db")
    database.migrate()
    fake = FakeLxd()
    return FakeContext(
        config=config or ClocheConfig(),
        state_dir=state_dir,
        database=database,
        audit=AuditLog(state_dir / "audit.log", write_atomically, database.audit_head),
        operations=OperationRunner(database),
        instances_factory=cast(Any, fake.instances_factory),
        projects_factory=cast(Any, fake.projects_factory),
        exports_factory=cast(Any, fake.exports_factory),
        host=fake_host(),
        fake=fake,
    )


@contextmanager
def fake_context(tmp_path: Path, config: ClocheConfig | None = None) -> Iterator[FakeContext]:
    """make_context, then wait for its operations and close its database."""
    context = make_context(tmp_path, config)
    try:
        yield context
    finally:
        context.operations.shutdown()
        context.database.close()


def wait_operation(context: Context, operation_id: str, timeout: float = 5.0) -> OperationRecord:
    """Poll the database until the operation has finished; return its record."""
    deadline = time.monotonic() + timeout
    while True:
        operation = context.database.operations.get(operation_id)
        if operation.finished:
            return operation
        if time.monotonic() > deadline:
            raise AssertionError(f"operation {operation_id} still {operation.status}")
        time.sleep(0.005)


def events(context: Context, action: str | None = None) -> list[AuditEvent]:
    """Every audit event so far (of one action when given), oldest first."""
    return [event for event in context.audit.read() if action is None or event.action == action]


def add_user(
    context: Context,
    name: str = "alice",
    *,
    keys: Sequence[str] = ("ed25519",),
    max_envs: int = 5,
    cpu: int = 4,
    memory_bytes: int = 8 * GIB,
    disk_bytes: int = 50 * GIB,
) -> users.UserView:
    """Add a user through core (so their fake project and profiles exist)."""
    return users.add_user(
        context,
        "admin-test",
        NewUser(
            name=name,
            ssh_keys=tuple(public_key(key) for key in keys),
            role="member",
            max_envs=max_envs,
            cpu=cpu,
            memory_bytes=memory_bytes,
            disk_bytes=disk_bytes,
        ),
    )


def new_env(
    name: str = "web",
    *,
    user: str = "alice",
    cpu: int = 1,
    memory_bytes: int = GIB,
    disk_bytes: int = 10 * GIB,
) -> NewEnvironment:
    """A standard-profile create request with the default image and small limits."""
    return NewEnvironment(
        user=user,
        name=name,
        image=None,
        profile="standard",
        cpu=cpu,
        memory_bytes=memory_bytes,
        disk_bytes=disk_bytes,
        processes=None,
    )


def ban_for_an_hour(context: Context, address: str, failures: int = 10) -> Ban:
    """Store a ban of address that runs out in an hour (as if sshd failures had made it)."""
    now = context.host.clock.now()
    ban = Ban(address, now + timedelta(hours=1), failures, now)
    context.database.bans.change([ban], [])
    return ban
