"""In-memory fakes at the backup ports: restic, the secrets store, the catalog, LXD exports.

FakeRestic keeps each repository (by URL) as its password, restic's JSON of each snapshot and
the bytes each one holds; it answers as restic does (its failures judged by host/restic.py's
judge, so they are the same sentences) and records every command. FakeArchives exports a fake
instance as a small LXD export tarball (index.yaml, backup.yaml, a file system) and imports one
back, recording its calls in the FakeLxd as the other fakes do.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from cloche.host.restic import judge
from cloche.model.backups import BackupRecord, Repository
from cloche.model.errors import ClocheError, Conflict
from cloche.model.instances import InstanceInfo
from cloche.model.process import Completed
from cloche.render.lxd_export import backup_yaml, instance_facts

if TYPE_CHECKING:
    from tests.unit.fakes import FakeInstances

FIRST_SNAPSHOT_TIME = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
MISSING = (
    "Fatal: unable to open config file: stat /srv/config: no such file or directory\n"
    "Is there a repository at the following location?\n"
)
WRONG_PASSWORD = "Fatal: wrong password or no key found\n"
DAMAGE = "error: pack 1a2b3c4d: does not match its hash\nFatal: repository contains errors\n"


@dataclass
class FakeRepository:
    """One restic repository: its password, its snapshots (as restic lists them), their data."""

    password: str
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, bytes] = field(default_factory=dict)


def _option(arguments: Sequence[str], name: str) -> str | None:
    return arguments[arguments.index(name) + 1] if name in arguments else None


def _options(arguments: Sequence[str], name: str) -> list[str]:
    return [arguments[i + 1] for i, word in enumerate(arguments) if word == name]


class FakeRestic:
    """restic on in-memory repositories; fail[subcommand] = error raises before it acts."""

    def __init__(self) -> None:
        self.repositories: dict[str, FakeRepository] = {}
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.fail: dict[str, ClocheError] = {}
        self.damaged: set[str] = set()
        self._made = 0

    def commands(self) -> list[str]:
        """The subcommand of every call, in order."""
        return [arguments[0] for _, arguments in self.calls]

    def arguments_of(self, command: str) -> list[tuple[str, ...]]:
        """The arguments of every call of one subcommand, in order."""
        return [arguments for _, arguments in self.calls if arguments[0] == command]

    def snapshot_ids(self, url: str) -> list[str]:
        """The short ids of a repository's snapshots, oldest first."""
        return [snapshot["short_id"] for snapshot in self.repositories[url].snapshots]

    # The port ----------------------------------------------------------------------------

    def run(
        self,
        state_dir: Path,
        repository: Repository,
        arguments: Sequence[str],
        *,
        doing: str,
        timeout: float = 600.0,
        check: bool = True,
    ) -> Completed:
        result = self._answer(repository, tuple(arguments), None)
        return judge(result, repository.name, doing) if check else result

    def run_with_stdin(
        self,
        state_dir: Path,
        repository: Repository,
        arguments: Sequence[str],
        chunks: Iterable[bytes],
        *,
        doing: str,
    ) -> Completed:
        data = b"".join(chunks)
        return judge(self._answer(repository, tuple(arguments), data), repository.name, doing)

    def run_to_file(
        self,
        state_dir: Path,
        repository: Repository,
        arguments: Sequence[str],
        path: Path,
        *,
        doing: str,
    ) -> Completed:
        result = self._answer(repository, tuple(arguments), None)
        if result.ok:  # a dump's bytes ride in stdout as latin-1, which maps each byte to one char
            path.write_bytes(result.stdout.encode("latin-1"))
            result = dataclasses.replace(result, stdout="")
        return judge(result, repository.name, doing)

    # restic's behaviour ------------------------------------------------------------------

    def _answer(
        self, repository: Repository, arguments: tuple[str, ...], stdin: bytes | None
    ) -> Completed:
        self.calls.append((repository.name, arguments))
        result = self._respond(repository, arguments, stdin)
        return dataclasses.replace(result, argv=("restic", *arguments))

    def _respond(
        self, repository: Repository, arguments: tuple[str, ...], stdin: bytes | None
    ) -> Completed:
        command = arguments[0]
        error = self.fail.get(command)
        if error is not None:
            raise error
        stored = self.repositories.get(repository.url)
        if command == "init":
            return self._init(repository, stored)
        if stored is None:
            return Completed((), 1, "", MISSING)
        if stored.password != repository.password:
            return Completed((), 1, "", WRONG_PASSWORD)
        if command == "backup":
            return self._backup(stored, arguments, stdin or b"")
        if command == "check" and repository.url in self.damaged:
            return Completed((), 1, "using temporary cache\n", DAMAGE)
        return self._read(stored, arguments)

    def _init(self, repository: Repository, stored: FakeRepository | None) -> Completed:
        if stored is not None:
            return Completed((), 1, "", "Fatal: config file already exists\n")
        self.repositories[repository.url] = FakeRepository(repository.password)
        return Completed((), 0, "created restic repository\n", "")

    def _read(self, stored: FakeRepository, arguments: tuple[str, ...]) -> Completed:
        command = arguments[0]
        output = ""
        if command == "snapshots":
            wanted = set((_option(arguments, "--tag") or "").split(","))
            output = json.dumps([s for s in stored.snapshots if wanted <= set(s["tags"])])
        elif command == "dump":
            data = next((d for i, d in stored.data.items() if i.startswith(arguments[1])), None)
            if data is None:
                return Completed((), 1, "", f"Fatal: no matching ID found for {arguments[1]}\n")
            output = data.decode("latin-1")
        elif command == "forget":
            self._forget(stored, arguments)
        return Completed((), 0, output, "")

    def _backup(self, stored: FakeRepository, arguments: tuple[str, ...], data: bytes) -> Completed:
        self._made += 1
        snapshot_id = hashlib.sha256(f"snapshot {self._made}".encode()).hexdigest()
        added = 0 if data in stored.data.values() else len(data)
        stored.snapshots.append(
            {
                "id": snapshot_id,
                "short_id": snapshot_id[:8],
                "time": (FIRST_SNAPSHOT_TIME + timedelta(days=self._made)).isoformat(),
                "tags": _options(arguments, "--tag"),
                "paths": ["/" + (_option(arguments, "--stdin-filename") or "")],
            }
        )
        stored.data[snapshot_id] = data
        lines = [
            {"message_type": "status", "percent_done": 0.5},
            {
                "message_type": "summary",
                "snapshot_id": snapshot_id,
                "data_added": added,
                "total_bytes_processed": len(data),
            },
        ]
        return Completed((), 0, "\n".join(json.dumps(line) for line in lines) + "\n", "")

    def _forget(self, stored: FakeRepository, arguments: tuple[str, ...]) -> None:
        tag = _option(arguments, "--tag")
        if tag is None:  # forget ID...
            gone = {i for i in stored.data if any(i.startswith(a) for a in arguments[1:])}
        else:  # a policy: this fake keeps the newest --keep-daily of the tagged snapshots
            tagged = [s["id"] for s in stored.snapshots if set(tag.split(",")) <= set(s["tags"])]
            keep = int(_option(arguments, "--keep-daily") or 0)
            gone = set(tagged[: max(len(tagged) - keep, 0)])
        stored.snapshots = [s for s in stored.snapshots if s["id"] not in gone]
        for snapshot_id in gone:
            del stored.data[snapshot_id]


class FakeSecrets:
    """The secrets file as a dict; passwords are generated as password-1, password-2, ..."""

    def __init__(self) -> None:
        self.repositories: dict[str, Repository] = {}
        self._made = 0

    def load_repositories(self, state_dir: Path) -> dict[str, Repository]:
        return dict(self.repositories)

    def save_repository(self, state_dir: Path, repository: Repository) -> bool:
        if self.repositories.get(repository.name) == repository:
            return False
        self.repositories[repository.name] = repository
        return True

    def remove_repository(self, state_dir: Path, name: str) -> bool:
        return self.repositories.pop(name, None) is not None

    def new_password(self) -> str:
        self._made += 1
        return f"password-{self._made}"


class FakeBackupCatalog:
    """The catalog as a list of records."""

    def __init__(self) -> None:
        self.records: list[BackupRecord] = []

    def add(self, state_dir: Path, record: BackupRecord) -> None:
        self.records = [
            r for r in self.records if (r.repository, r.id) != (record.repository, record.id)
        ]
        self.records.append(record)

    def list(self, state_dir: Path, repository: str | None = None) -> list[BackupRecord]:
        chosen = [r for r in self.records if repository is None or r.repository == repository]
        return sorted(chosen, key=lambda record: record.time)

    def forget(self, state_dir: Path, repository: str, keep_ids: set[str]) -> int:
        before = len(self.records)
        self.records = [r for r in self.records if r.repository != repository or r.id in keep_ids]
        return before - len(self.records)


def export_tarball(info: InstanceInfo) -> bytes:
    """An uncompressed LXD export of an instance: index.yaml, backup.yaml, a file system."""
    instance = {
        "name": info.name,
        "config": dict(info.config),
        "devices": {key: dict(value) for key, value in info.devices.items()},
        "profiles": list(info.profiles),
    }
    members = [
        ("backup/index.yaml", yaml.safe_dump({"name": info.name, "backend": "dir"})),
        ("backup/container/backup.yaml", yaml.safe_dump({"container": instance})),
        ("backup/container/rootfs/etc/hostname", f"{info.name}\n"),
    ]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:") as archive:
        for name, text in members:
            data = text.encode()
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


class FakeArchives:
    """One project's backup snapshots, exports and imports; mimics runtime.exports.LxdExports."""

    def __init__(self, instances: FakeInstances) -> None:
        self.instances = instances
        self.fake = instances.fake

    def create_snapshot(self, name: str, snapshot: str) -> None:
        self.instances._call("create_snapshot", name, snapshot)
        self.instances._require(name).snapshots[snapshot] = datetime.now(UTC)

    def delete_snapshot(self, name: str, snapshot: str) -> None:
        self.instances._call("delete_snapshot", name, snapshot)
        self.instances._store[name].snapshots.pop(snapshot, None)

    @contextmanager
    def export(self, name: str, backup: str) -> Iterator[Iterator[bytes]]:
        self.instances._call("export", name, backup)
        data = export_tarball(self.instances._require(name).info)
        yield iter([data[:512], data[512:]])

    def import_backup(self, name: str, tarball: Path, pool: str) -> None:
        self.instances._call("import_backup", name, tarball.name, pool)
        if name in self.instances._store:
            raise Conflict(f"Instance {name!r} already exists in project {self.instances.project}.")
        with tarball.open("rb") as stream:
            facts = instance_facts(backup_yaml(stream), tarball.name)
        instance = self.fake.add_instance(self.instances.project, name)
        instance.info = InstanceInfo(
            name=name,
            status="Stopped",
            profiles=tuple(facts.get("profiles") or ()),
            config=dict(facts.get("config") or {}),
            devices=dict(facts.get("devices") or {}),
        )

    def reconfigure_import(
        self, name: str, eth0: dict[str, str], *, forget_mac: bool, new_identity: bool
    ) -> None:
        self.instances._call(
            "reconfigure_import", name, eth0, forget_mac=forget_mac, new_identity=new_identity
        )
        instance = self.instances._require(name)
        config = dict(instance.info.config)
        if new_identity:
            config["volatile.apply_template"] = "copy"
        devices = {**instance.info.devices, "eth0": dict(eth0)}
        instance.info = dataclasses.replace(instance.info, config=config, devices=devices)
