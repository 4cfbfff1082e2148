"""Use cases for off-host backups: restic repositories, backup, list, restore, check, retention.

A backup is an LXD export (uncompressed, instance only) streamed into 'restic backup --stdin',
so successive backups of an environment share their unchanged chunks. Repositories and their
passwords live only in the root-only secrets file; nothing here logs, audits or returns them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import yaml

from cloche.core.audited import audited
from cloche.core.context import Context
from cloche.core.new_environment import Newborn, build, reserve, start_new_environment
from cloche.core.periodic import run_every
from cloche.host import secrets
from cloche.host.restic import restic, restic_stdin, restic_to_file
from cloche.host.run import Completed
from cloche.model.audit import JsonValue
from cloche.model.backups import (
    Repository,
    Retention,
    check_backup_id,
    check_repository_name,
    repository_kind,
)
from cloche.model.errors import ClocheError, Conflict, HostFailure, Invalid, NotFound
from cloche.model.limits import Limits
from cloche.model.names import check_environment_name, check_user_name
from cloche.model.records import EnvironmentRecord, Profile
from cloche.model.units import parse_size
from cloche.render.image import image_alias
from cloche.render.lxd import static_nic
from cloche.render.restic import (
    ResticSnapshot,
    backup_arguments,
    backup_summary,
    dump_arguments,
    forget_arguments,
    parse_snapshots,
    parse_tags,
    restic_argv,
    restic_environment,
    snapshot_name,
)
from cloche.store.backup_catalog import BackupCatalog, BackupRecord

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
BACKUPS_DIRECTORY = "backups"
LOCAL_REPOSITORY = "local"
SCHEDULE_INTERVAL_SECONDS = 24 * 3600.0
SCHEDULE_POLL_SECONDS = 600.0
SCHEDULE_STAMP = "last-scheduled-backup"

_catalogs: dict[Path, BackupCatalog] = {}
_catalogs_lock = threading.Lock()


def _quiet(message: str) -> None:
    """Progress sink that drops messages."""


def backups_dir(state_dir: Path) -> Path:
    """Where the local repository, restic's cache and restore scratch files live."""
    return state_dir / BACKUPS_DIRECTORY


def catalog(state_dir: Path) -> BackupCatalog:
    """The backup catalog of this state directory (opened once per process)."""
    with _catalogs_lock:
        if state_dir not in _catalogs:
            _catalogs[state_dir] = BackupCatalog(backups_dir(state_dir) / "backups.db")
        return _catalogs[state_dir]


def _environment(state_dir: Path, repository: Repository) -> dict[str, str]:
    cache = backups_dir(state_dir) / "cache"
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    return restic_environment(repository, os.environ, str(cache))


def _restic(
    state_dir: Path,
    repository: Repository,
    *arguments: str,
    doing: str,
    timeout: float = 600.0,
    check: bool = True,
) -> Completed:
    return restic(
        restic_argv(repository, *arguments),
        _environment(state_dir, repository),
        repository=repository.name,
        doing=doing,
        timeout=timeout,
        check=check,
    )


def _open_or_init(state_dir: Path, repository: Repository) -> str:
    """'opened' an existing repository (password checked) or 'initialised' a new one."""
    probe = _restic(state_dir, repository, "cat", "config", doing="open", check=False)
    if probe.ok:
        return "opened"
    try:
        _restic(state_dir, repository, "cat", "config", doing="open")
    except NotFound:
        _restic(state_dir, repository, "init", doing="initialise the repository")
        return "initialised"
    return "opened"  # not reached: the check above raised


# Repositories --------------------------------------------------------------------------------


def ensure_local_repository(state_dir: Path) -> bool:
    """Make the default local repository (generated password) unless it exists; True if made."""
    path = backups_dir(state_dir) / LOCAL_REPOSITORY
    known = secrets.load_repositories(state_dir).get(LOCAL_REPOSITORY)
    if known is not None and (Path(known.url) / "config").exists():
        return secrets.save_repository(state_dir, known)  # False unless it fixed permissions
    repository = known or Repository(
        name=LOCAL_REPOSITORY, url=str(path), password=secrets.new_password()
    )
    backups_dir(state_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    secrets.save_repository(state_dir, repository)
    _open_or_init(state_dir, repository)
    return True


def add_repository(
    context: Context,
    actor: str,
    name: str,
    url: str,
    *,
    password: str | None,
    s3_access_key: str | None = None,
    s3_secret_key: str | None = None,
    sftp_command: str | None = None,
) -> dict[str, Any]:
    """Add (or update) a repository: initialise it when new, else check the password."""
    details: dict[str, JsonValue] = {"url": url}
    with audited(context, actor, "added backup repository", name, details):
        check_repository_name(name)
        kind = repository_kind(url)
        if (s3_access_key is None) != (s3_secret_key is None):
            raise Invalid("Give both --s3-access-key and --s3-secret-key, or neither.")
        if kind != "s3" and s3_access_key is not None:
            raise Invalid(f"S3 keys only apply to s3: repositories, not {kind} ones; drop them.")
        if kind != "sftp" and sftp_command is not None:
            raise Invalid(f"An SFTP command only applies to sftp: repositories, not {kind} ones.")
        if password is not None and not password.strip():
            raise Invalid("The password file is empty; put the repository's password in it.")
        repository = Repository(
            name=name,
            url=url,
            password=password.strip() if password is not None else secrets.new_password(),
            s3_access_key=s3_access_key,
            s3_secret_key=s3_secret_key,
            sftp_command=sftp_command,
        )
        state = _open_or_init(context.state_dir, repository)
        secrets.save_repository(context.state_dir, repository)
        details["state"] = state
        return {**repository.describe(), "state": state}


def list_repositories(context: Context) -> list[dict[str, Any]]:
    """Every repository (name, kind, URL; never a secret) and which is the default."""
    default = context.config.backups.default_repository
    return [
        {**repository.describe(), "default": name == default}
        for name, repository in sorted(secrets.load_repositories(context.state_dir).items())
    ]


def remove_repository(context: Context, actor: str, name: str) -> None:
    """Forget a repository (its data stays where it is)."""
    with audited(context, actor, "removed backup repository", name):
        secrets.get_repository(context.state_dir, name)
        if name == context.config.backups.default_repository:
            raise Conflict(
                f"Repository {name!r} is the default (backups.default_repository); name another "
                "default in the config first."
            )
        secrets.remove_repository(context.state_dir, name)


def _repository(context: Context, name: str | None) -> Repository:
    return secrets.get_repository(
        context.state_dir, name or context.config.backups.default_repository
    )


# Backup --------------------------------------------------------------------------------------


class _Counter:
    """Counts the bytes that pass through an iterator of chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.total = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.total += len(chunk)
            yield chunk


def backup_environment(
    context: Context, repository: Repository, env: EnvironmentRecord, progress: Progress = _quiet
) -> dict[str, Any]:
    """Snapshot, export and stream one environment into restic; return restic's figures."""
    target = f"{env.user}/{env.name}"
    exports = context.user_exports(env.user)
    started = time.monotonic()
    snapshot = snapshot_name(datetime.now(UTC))
    with context.locked(f"env:{target}"):
        progress(f"{target}: taking snapshot {snapshot}")
        exports.create_snapshot(env.name, snapshot)
        try:
            progress(f"{target}: exporting and uploading to {repository.name}")
            with exports.export(env.name, snapshot) as chunks:
                counter = _Counter(chunks)
                result = restic_stdin(
                    restic_argv(repository, *backup_arguments(env.user, env.name, snapshot)),
                    _environment(context.state_dir, repository),
                    counter,
                    repository=repository.name,
                    doing=f"back up {target}",
                )
        finally:
            progress(f"{target}: deleting snapshot {snapshot}")
            exports.delete_snapshot(env.name, snapshot)
    summary = backup_summary(result.stdout)
    seconds = time.monotonic() - started
    backup_id = str(summary["snapshot_id"])[:8]
    record = BackupRecord(
        repository=repository.name,
        id=backup_id,
        user=env.user,
        env=env.name,
        time=datetime.now(UTC).isoformat(),
        data_added=int(summary.get("data_added", 0)),
        total_bytes=int(summary.get("total_bytes_processed", counter.total)),
        seconds=seconds,
    )
    catalog(context.state_dir).add(record)
    return {
        "id": backup_id,
        "repository": repository.name,
        "environment": target,
        "snapshot": snapshot,
        "data_added": record.data_added,
        "total_bytes": record.total_bytes,
        "seconds": round(seconds, 2),
        "mb_per_second": round(record.total_bytes / 1e6 / max(seconds, 0.001), 1),
    }


def _targets(context: Context, address: tuple[str, str] | None) -> list[EnvironmentRecord]:
    if address is not None:
        user, name = check_user_name(address[0]), check_environment_name(address[1])
        env = context.database.environments.get(user, name)
        if env.status != "ready":
            raise Conflict(f"Environment {user}/{name} is {env.status}; back it up once ready.")
        return [env]
    return [env for env in context.database.environments.list() if env.status == "ready"]


def request_backup(
    context: Context,
    actor: str,
    address: tuple[str, str] | None,
    repository_name: str | None,
) -> str:
    """Back up one environment (or all of them with address None) in the background."""
    label = f"{address[0]}/{address[1]}" if address else "all environments"
    with audited(context, actor, "backed up environment", label, only_failure=True):
        repository = _repository(context, repository_name)
        envs = _targets(context, address)

    def work(progress: Progress) -> None:
        failures = []
        for env in envs:
            target = f"{env.user}/{env.name}"
            details: dict[str, JsonValue] = {"repository": repository.name}
            try:
                with audited(context, actor, "backed up environment", target, details):
                    done = backup_environment(context, repository, env, progress)
                    details.update({"id": done["id"], "data_added": done["data_added"]})
            except ClocheError as error:
                if address is not None:
                    raise
                failures.append(f"{target}: {error}")
        if failures:
            raise HostFailure(
                f"{len(failures)} of {len(envs)} backups failed ({failures[0]}); read the audit "
                "log for each and run 'cloche backup run' again."
            )

    return context.operations.submit("back up", label, work)


# Listing -------------------------------------------------------------------------------------


def _snapshots(
    context: Context, repository: Repository, address: tuple[str, str] | None
) -> list[ResticSnapshot]:
    tag = "cloche" if address is None else f"cloche,user={address[0]},env={address[1]}"
    result = _restic(
        context.state_dir, repository, "snapshots", "--json", "--tag", tag, doing="list backups"
    )
    return parse_snapshots(result.stdout)


def list_backups(
    context: Context, address: tuple[str, str] | None, repository_name: str | None
) -> list[dict[str, Any]]:
    """Backups (of one environment when given) in one repository or all of them, oldest first."""
    if address is not None:
        address = (check_user_name(address[0]), check_environment_name(address[1]))
    names = (
        [repository_name]
        if repository_name
        else sorted(secrets.load_repositories(context.state_dir))
    )
    listed = []
    for name in names:
        repository = secrets.get_repository(context.state_dir, name)
        known = {record.id: record for record in catalog(context.state_dir).list(name)}
        for snapshot in _snapshots(context, repository, address):
            tags = parse_tags(snapshot.tags)
            if tags is None:
                continue
            record = known.get(snapshot.short_id)
            listed.append(
                {
                    "id": snapshot.short_id,
                    "repository": name,
                    "environment": f"{tags.user}/{tags.env}",
                    "time": snapshot.time,
                    "snapshot": tags.snapshot,
                    "data_added": record.data_added if record else None,
                    "total_bytes": record.total_bytes if record else None,
                }
            )
    return sorted(listed, key=lambda item: str(item["time"]))


def _find_backup(
    context: Context, backup_id: str, repository_name: str | None
) -> tuple[Repository, ResticSnapshot]:
    check_backup_id(backup_id)
    if repository_name is None:
        for record in catalog(context.state_dir).list():
            if record.id.startswith(backup_id[:8]):
                repository_name = record.repository
                break
    names = (
        [repository_name]
        if repository_name
        else sorted(secrets.load_repositories(context.state_dir))
    )
    for name in names:
        repository = secrets.get_repository(context.state_dir, name)
        for snapshot in _snapshots(context, repository, None):
            if snapshot.id.startswith(backup_id) or snapshot.short_id == backup_id:
                return repository, snapshot
    raise NotFound(
        f"There is no backup {backup_id} in {', '.join(names) or 'any repository'}; "
        "list them with 'cloche backup list'."
    )


# Restore -------------------------------------------------------------------------------------


def _instance_facts(tarball: Path) -> dict[str, Any]:
    """The instance's config, devices and profiles from the export's backup.yaml."""
    with tarfile.open(tarball, "r:") as archive:
        for member in archive:
            if member.name.endswith("backup.yaml") and member.isfile():
                stream = archive.extractfile(member)
                if stream is not None:
                    data = yaml.safe_load(stream.read()) or {}
                    instance = data.get("container") or data.get("instance") or {}
                    if isinstance(instance, dict):
                        return instance
    raise Invalid(f"The backup {tarball.name} holds no backup.yaml; it is not an LXD export.")


def _limits_of(facts: dict[str, Any]) -> tuple[Limits, Profile]:
    config = facts.get("config") or {}
    root = (facts.get("devices") or {}).get("root") or {}
    profiles = facts.get("profiles") or ["standard"]
    try:
        limits = Limits(
            cpu=int(config["limits.cpu"]),
            memory_bytes=parse_size(str(config["limits.memory"])),
            disk_bytes=parse_size(str(root["size"])),
            processes=int(config["limits.processes"]),
        )
    except (KeyError, ValueError) as error:
        raise Invalid(
            f"The backup lacks the environment's limits ({error}); restore it in place of an "
            "environment that has a record."
        ) from None
    profile = str(profiles[0])
    if profile not in ("standard", "docker", "strict"):
        raise Invalid(f"The backup's profile {profile!r} is not one of cloche's; restore in place.")
    return limits, cast(Profile, profile)


@contextlib.contextmanager
def _dumped(
    context: Context, repository: Repository, snapshot: ResticSnapshot, user: str, env: str
) -> Iterator[Path]:
    scratch = backups_dir(context.state_dir) / "restore"
    scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle, name = tempfile.mkstemp(prefix=f"{user}-{env}-", suffix=".tar", dir=scratch)
    os.close(handle)
    path = Path(name)
    try:
        restic_to_file(
            restic_argv(repository, *dump_arguments(snapshot.short_id, user, env)),
            _environment(context.state_dir, repository),
            str(path),
            repository=repository.name,
            doing=f"read backup {snapshot.short_id}",
        )
        yield path
    finally:
        path.unlink(missing_ok=True)


def _restore_as_new(
    context: Context,
    repository: Repository,
    snapshot: ResticSnapshot,
    source: tuple[str, str],
    name: str,
    progress: Progress,
) -> dict[str, JsonValue]:
    user = source[0]
    exports = context.user_exports(user)
    progress(f"reading backup {snapshot.short_id} from {repository.name}")
    with _dumped(context, repository, snapshot, *source) as tarball:
        limits, profile = _limits_of(_instance_facts(tarball))
        newborn = Newborn(user, name, image_alias(context.config.image.release), profile, limits)
        address = reserve(context, newborn)

        def make(address: str, progress: Progress) -> None:
            progress("importing into LXD")
            exports.import_backup(name, tarball, context.config.storage.pool)
            # A new MAC, and the image's 'copy' templates: a new machine-id and SSH host keys.
            exports.reconfigure_import(
                name,
                static_nic(context.config.network.bridge, address),
                forget_mac=True,
                new_identity=True,
            )

        build(context, newborn, address, make, progress)
    return {"address": address, "limits": limits.describe()}


def _restore_in_place(
    context: Context,
    repository: Repository,
    snapshot: ResticSnapshot,
    env: EnvironmentRecord,
    progress: Progress,
) -> dict[str, JsonValue]:
    instances = context.user_instances(env.user)
    exports = context.user_exports(env.user)
    progress(f"reading backup {snapshot.short_id} from {repository.name}")
    with _dumped(context, repository, snapshot, env.user, env.name) as tarball:
        _instance_facts(tarball)  # refuse a file that is not an export before deleting anything
        with context.locked(f"env:{env.user}/{env.name}"):
            progress("stopping and replacing the environment")
            instances.delete(env.name)
            context.database.environments.update(env.user, env.name, status="creating")
            progress("importing into LXD")
            exports.import_backup(env.name, tarball, context.config.storage.pool)
            exports.reconfigure_import(
                env.name,
                static_nic(context.config.network.bridge, env.address or ""),
                forget_mac=False,
                new_identity=False,
            )
            instances.set_limits(
                env.name,
                Limits(env.cpu, env.memory_bytes, env.disk_bytes, env.processes),
            )
    start_new_environment(context, env.user, env.name, progress)
    return {"address": env.address}


def request_restore(
    context: Context,
    actor: str,
    backup_id: str,
    *,
    as_new: str | None,
    in_place: bool,
    repository_name: str | None,
) -> str:
    """Restore a backup as a new environment of the same user, or in place; return the op id."""
    label = f"backup {backup_id}"
    with audited(context, actor, "restored backup", label, only_failure=True):
        if (as_new is None) == (not in_place):
            raise Invalid("Say how to restore: give exactly one of --as-new NAME or --in-place.")
        repository, snapshot = _find_backup(context, backup_id, repository_name)
        tags = parse_tags(snapshot.tags)
        if tags is None:
            raise Invalid(f"Backup {backup_id} was not made by cloche; restore it with restic.")
        source = (tags.user, tags.env)
        context.database.users.get(tags.user)
        existing: EnvironmentRecord | None = None
        if as_new is not None:
            check_environment_name(as_new)
            if any(env.name == as_new for env in context.database.environments.list(tags.user)):
                raise Conflict(
                    f"Environment {tags.user}/{as_new} already exists; choose another name."
                )
            target = f"{tags.user}/{as_new}"
        else:
            existing = context.database.environments.get(tags.user, tags.env)
            target = f"{tags.user}/{tags.env}"
    details: dict[str, JsonValue] = {
        "backup": snapshot.short_id,
        "repository": repository.name,
        "source": f"{tags.user}/{tags.env}",
        "mode": "as new" if as_new else "in place",
    }

    def work(progress: Progress) -> None:
        with audited(context, actor, "restored backup", target, details):
            if existing is not None:
                details.update(_restore_in_place(context, repository, snapshot, existing, progress))
            else:
                assert as_new is not None
                details.update(
                    _restore_as_new(context, repository, snapshot, source, as_new, progress)
                )

    return context.operations.submit("restore backup", target, work)


# Check and retention -------------------------------------------------------------------------


def check_repository(
    context: Context, actor: str, repository_name: str | None, *, read_data: bool
) -> dict[str, Any]:
    """'restic check' (reading every pack with read_data); raise naming the repo on damage."""
    repository = _repository(context, repository_name)
    details: dict[str, JsonValue] = {"read_data": read_data}
    with audited(context, actor, "checked backup repository", repository.name, details):
        arguments = ["check", *(["--read-data"] if read_data else [])]
        result = _restic(
            context.state_dir,
            repository,
            *arguments,
            doing="check",
            timeout=6 * 3600.0,
            check=False,
        )
        if not result.ok:
            problem = _first_problem(result.stderr + "\n" + result.stdout)
            if "wrong password" in problem.lower():
                _restic(context.state_dir, repository, "cat", "config", doing="open")
            raise HostFailure(
                f"Backup repository {repository.name!r} is damaged ({problem}); restore its "
                "files from another copy or make fresh backups into a new repository."
            )
        return {"repository": repository.name, "ok": True, "read_data": read_data}


def _first_problem(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for words in ("pack", "does not match", "damaged", "error", "fatal"):
        for line in lines:
            if words in line.lower():
                return line[:300]
    return lines[-1][:300] if lines else "restic check failed"


def apply_retention(
    context: Context, actor: str, repository_name: str | None, progress: Progress = _quiet
) -> dict[str, Any]:
    """Forget each environment's backups beyond the keep-* settings, then prune the repo."""
    repository = _repository(context, repository_name)
    settings = context.config.backups
    retention = Retention(settings.keep_daily, settings.keep_weekly, settings.keep_monthly)
    details: dict[str, JsonValue] = {
        "keep_daily": retention.daily,
        "keep_weekly": retention.weekly,
        "keep_monthly": retention.monthly,
    }
    with audited(context, actor, "applied backup retention", repository.name, details):
        environments = sorted(
            {
                (tags.user, tags.env)
                for snapshot in _snapshots(context, repository, None)
                if (tags := parse_tags(snapshot.tags)) is not None
            }
        )
        for user, env in environments:
            progress(f"forgetting old backups of {user}/{env}")
            _restic(
                context.state_dir,
                repository,
                *forget_arguments(retention, user, env),
                doing=f"forget old backups of {user}/{env}",
            )
        progress(f"pruning {repository.name}")
        _restic(context.state_dir, repository, "prune", doing="prune", timeout=6 * 3600.0)
        remaining = _snapshots(context, repository, None)
        dropped = catalog(context.state_dir).forget(
            repository.name, {snapshot.short_id for snapshot in remaining}
        )
        details["forgotten"] = dropped
        return {"repository": repository.name, "forgotten": dropped, "kept": len(remaining)}


def request_retention(context: Context, actor: str, repository_name: str | None) -> str:
    """Apply retention in the background."""
    _repository(context, repository_name)

    def work(progress: Progress) -> None:
        apply_retention(context, actor, repository_name, progress)

    target = repository_name or context.config.backups.default_repository
    return context.operations.submit("apply backup retention", target, work)


def request_remove_backup(
    context: Context, actor: str, backup_id: str, repository_name: str | None
) -> str:
    """Forget one backup and prune its repository in the background (its data is freed)."""
    details: dict[str, JsonValue] = {"backup": backup_id[:64]}
    with audited(context, actor, "removed backup", backup_id[:64], details, only_failure=True):
        repository, snapshot = _find_backup(context, backup_id, repository_name)
    tags = parse_tags(snapshot.tags)
    details.update(
        repository=repository.name,
        environment=f"{tags.user}/{tags.env}" if tags else None,
        time=snapshot.time,
    )

    def work(progress: Progress) -> None:
        with audited(context, actor, "removed backup", snapshot.short_id, details):
            progress(f"forgetting backup {snapshot.short_id} in {repository.name}")
            _restic(
                context.state_dir,
                repository,
                "forget",
                snapshot.id,
                doing=f"forget backup {snapshot.short_id}",
            )
            progress(f"pruning {repository.name} (frees what no other backup shares)")
            _restic(context.state_dir, repository, "prune", doing="prune", timeout=6 * 3600.0)
            remaining = _snapshots(context, repository, None)
            catalog(context.state_dir).forget(
                repository.name, {backup.short_id for backup in remaining}
            )

    return context.operations.submit("remove backup", snapshot.short_id, work)


# Schedule ------------------------------------------------------------------------------------


def scheduled_run(context: Context) -> None:
    """One scheduled round: back up every ready environment, then apply retention."""
    repository = _repository(context, None)
    for env in _targets(context, None):
        target = f"{env.user}/{env.name}"
        details: dict[str, JsonValue] = {"repository": repository.name, "scheduled": True}
        try:
            with audited(context, "schedule", "backed up environment", target, details):
                done = backup_environment(context, repository, env)
                details.update({"id": done["id"], "data_added": done["data_added"]})
        except ClocheError as error:
            log.warning("scheduled backup of %s failed: %s", target, error)
    try:
        apply_retention(context, "schedule", None)
    except ClocheError as error:
        log.warning("backup retention failed: %s", error)


def _last_run(stamp: Path) -> float:
    try:
        return stamp.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def start_backup_schedule(context: Context) -> threading.Thread | None:
    """Drop unfinished restores' scratch files; run scheduled_run daily (None when off)."""
    scratch = backups_dir(context.state_dir) / "restore"
    if scratch.is_dir():  # restores a previous daemon did not finish
        for leftover in scratch.glob("*.tar"):
            leftover.unlink(missing_ok=True)
    if context.config.backups.schedule == "off":
        return None
    stamp = backups_dir(context.state_dir) / SCHEDULE_STAMP

    if not stamp.exists():  # a new host: the first round comes a day from now
        stamp.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        stamp.touch()

    def when_due() -> None:
        if time.time() - _last_run(stamp) >= SCHEDULE_INTERVAL_SECONDS:
            # Stamped first, so a failing round is retried the next day, not every poll.
            stamp.touch()
            scheduled_run(context)

    return run_every("backup-schedule", SCHEDULE_POLL_SECONDS, when_due)
