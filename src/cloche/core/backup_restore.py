"""Use cases that restore a backup: as a new environment of the same user, or in place."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cloche.core.audited import audited
from cloche.core.backup_listing import find_backup
from cloche.core.context import Context
from cloche.core.new_environment import (
    Newborn,
    build,
    limits_of,
    reserve,
    start_new_environment,
)
from cloche.core.operations import Progress
from cloche.core.revert import Reverter
from cloche.model.audit import JsonValue
from cloche.model.backups import Repository
from cloche.model.errors import Conflict, Invalid
from cloche.model.names import check_environment_name
from cloche.model.records import EnvironmentRecord
from cloche.render.image import image_alias
from cloche.render.lxd import static_nic
from cloche.render.lxd_export import backup_yaml, export_limits, instance_facts
from cloche.render.restic import dump_arguments, parse_tags
from cloche.render.restic_output import ResticSnapshot


@contextlib.contextmanager
def _dumped(
    context: Context, repository: Repository, snapshot: ResticSnapshot, user: str, env: str
) -> Iterator[Path]:
    """The backup's tarball in a restore file, removed when the block ends."""
    with context.host.backup_files.restore_file(context.state_dir, f"{user}-{env}-") as path:
        context.host.restic.run_to_file(
            context.state_dir,
            repository,
            dump_arguments(snapshot.short_id, user, env),
            path,
            doing=f"read backup {snapshot.short_id}",
        )
        yield path


def _export_facts(context: Context, tarball: Path) -> dict[str, Any]:
    """The instance's facts from the tarball's backup.yaml (Invalid when it is no export)."""
    with context.host.backup_files.open_archive(tarball) as stream:
        return instance_facts(backup_yaml(stream), tarball.name)


def _restore_as_new(
    context: Context,
    repository: Repository,
    snapshot: ResticSnapshot,
    source: tuple[str, str],
    name: str,
    progress: Progress,
) -> dict[str, JsonValue]:
    user = source[0]
    archives = context.user_exports(user)
    progress(f"reading backup {snapshot.short_id} from {repository.name}")
    with _dumped(context, repository, snapshot, *source) as tarball:
        limits, profile = export_limits(_export_facts(context, tarball))

        def make(address: str, progress: Progress) -> None:
            progress("importing into LXD")
            archives.import_backup(name, tarball, context.config.storage.pool)
            # A new MAC, and the image's 'copy' templates: a new machine-id and SSH host keys.
            archives.reconfigure_import(
                name,
                static_nic(context.config.network.bridge, address),
                forget_mac=True,
                new_identity=True,
            )

        newborn = Newborn(user, name, image_alias(context.config.image.release), profile, limits)
        address = reserve(context, newborn)
        build(context, newborn, address, make, progress)
    return {"address": address, "limits": limits.describe()}


def _restore_in_place(
    context: Context,
    repository: Repository,
    snapshot: ResticSnapshot,
    env: EnvironmentRecord,
    progress: Progress,
) -> dict[str, JsonValue]:
    target = f"{env.user}/{env.name}"
    instances = context.user_instances(env.user)
    archives = context.user_exports(env.user)
    progress(f"reading backup {snapshot.short_id} from {repository.name}")
    with Reverter() as revert:
        with _dumped(context, repository, snapshot, env.user, env.name) as tarball:
            _export_facts(context, tarball)  # refuse a file that is no export before deleting
            with context.locked(f"env:{target}"):
                progress("stopping and replacing the environment")
                instances.delete(env.name)
                context.database.environments.update(env.user, env.name, status="creating")
                # The old instance is gone for good. The record keeps its status, so another
                # restore can be tried (the reconciler removes a 'creating' one at start).
                revert.add(
                    f"put back the status of {target}",
                    lambda: context.database.environments.update(
                        env.user, env.name, status=env.status
                    ),
                )
                revert.add(f"delete the half-restored {target}", lambda: instances.delete(env.name))
                progress("importing into LXD")
                archives.import_backup(env.name, tarball, context.config.storage.pool)
                archives.reconfigure_import(
                    env.name,
                    static_nic(context.config.network.bridge, env.address or ""),
                    forget_mac=False,
                    new_identity=False,
                )
                instances.set_limits(env.name, limits_of(env))
        start_new_environment(context, env.user, env.name, progress)
        revert.success()
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
        repository, snapshot = find_backup(context, backup_id, repository_name)
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
