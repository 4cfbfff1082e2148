"""Use cases for users (tenants): add, list, show, quotas, keys, remove."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from cloche.core import environments, key_push, ssh_access
from cloche.core.audited import audited, submit_audited
from cloche.core.context import Context
from cloche.core.revert import Reverter
from cloche.model.audit import JsonValue
from cloche.model.commands import NewUser, QuotaChanges
from cloche.model.errors import Conflict
from cloche.model.limits import ProjectQuotas
from cloche.model.names import check_host_account_name, check_user_name
from cloche.model.records import SshKeyRecord, UserRecord
from cloche.model.sshkeys import parse_key_list, parse_public_key
from cloche.render.instance import project_name, project_request, security_profile_requests

# Every profile's default process limit fits this many times per environment in the project.
PROCESSES_PER_ENVIRONMENT = 1024


def _quotas(user: UserRecord) -> ProjectQuotas:
    return ProjectQuotas(
        environments=user.max_envs,
        cpu=user.cpu,
        memory_bytes=user.memory_bytes,
        disk_bytes=user.disk_bytes,
        processes=user.processes or max(1, user.max_envs) * PROCESSES_PER_ENVIRONMENT,
        docker=True,
    )


def converge_project(context: Context, user: UserRecord) -> None:
    """Make the user's LXD project and security profiles match the user's record."""
    projects = context.projects()
    projects.ensure_project(
        project_request(user.name, _quotas(user), context.config.network.bridge)
    )
    projects.ensure_profiles(
        project_name(user.name),
        security_profile_requests(
            user.uid_base,
            user.uid_size,
            context.config.storage.pool,
            context.config.network.bridge,
            context.config.profile.processes,
        ),
    )


@dataclass(frozen=True)
class UserView:
    """A user's record with their LXD project and how many environments and keys they have."""

    record: UserRecord
    project: str
    environment_count: int
    key_count: int


@dataclass(frozen=True)
class UserDetail(UserView):
    """One user with their keys and the names of their environments."""

    keys: tuple[SshKeyRecord, ...]
    environment_names: tuple[str, ...]


def describe_user(context: Context, user: UserRecord) -> UserView:
    """The user with their project and usage counts."""
    return UserView(
        record=user,
        project=project_name(user.name),
        environment_count=context.database.environments.count(user.name),
        key_count=len(context.database.users.list_keys(user.name)),
    )


def add_user(context: Context, actor: str, command: NewUser) -> UserView:
    """Add a user: record, LXD project with the quotas, security profiles, keys."""
    with audited(context, actor, "added user", command.name, {"role": command.role}):
        check_user_name(command.name)
        keys = [parse_public_key(text) for text in command.ssh_keys]
        with context.locked(f"user:{command.name}"):
            user = context.database.users.add(
                command.name,
                role=command.role,
                max_envs=command.max_envs,
                cpu=command.cpu,
                memory_bytes=command.memory_bytes,
                disk_bytes=command.disk_bytes,
            )
            # Nothing half-made: the project (if any), the account and the record go together.
            with Reverter() as revert:
                revert.add("forget the user", lambda: context.database.users.delete(user.name))
                revert.add("remove the project", lambda: _remove_project(context, user.name))
                revert.add(
                    "remove the jump account",
                    lambda: context.host.jump_accounts.remove(user.name),
                )
                for key in keys:
                    context.database.users.add_key(
                        user.name, key.fingerprint, key.line, key.comment
                    )
                converge_project(context, user)
                ssh_access.converge_user(context, user.name)
                revert.success()
        return describe_user(context, user)


def list_users(context: Context) -> list[UserView]:
    """Every user with quotas and usage."""
    return [describe_user(context, user) for user in context.database.users.list()]


def show_user(context: Context, name: str) -> UserDetail:
    """One user with keys and environment names."""
    user = context.database.users.get(check_user_name(name))
    shown = describe_user(context, user)
    return UserDetail(
        record=shown.record,
        project=shown.project,
        environment_count=shown.environment_count,
        key_count=shown.key_count,
        keys=tuple(context.database.users.list_keys(name)),
        environment_names=tuple(env.name for env in context.database.environments.list(name)),
    )


def set_host_account(context: Context, actor: str, name: str, account: str | None) -> UserView:
    """Let a host account call the daemon's socket as this user (None: no account may)."""
    if account is not None:
        check_host_account_name(account)
    with audited(context, actor, "mapped host account of user", name, {"host_account": account}):
        user = context.database.users.set_host_account(check_user_name(name), account)
    return describe_user(context, user)


def set_quota(context: Context, actor: str, name: str, changes: QuotaChanges) -> UserView:
    """Change a user's quotas (LXD's project limits follow)."""
    given: dict[str, JsonValue] = {
        key: value for key, value in asdict(changes).items() if value is not None
    }
    with audited(context, actor, "changed quotas of user", name, given):
        with context.locked(f"user:{name}"):
            before = context.database.users.get(check_user_name(name))
            user = context.database.users.update_quotas(
                name,
                max_envs=before.max_envs if changes.max_envs is None else changes.max_envs,
                cpu=changes.cpu or before.cpu,
                memory_bytes=changes.memory_bytes or before.memory_bytes,
                disk_bytes=changes.disk_bytes or before.disk_bytes,
            )
            with Reverter() as revert:
                revert.add(
                    "put the previous quotas back",
                    lambda: context.database.users.update_quotas(
                        name,
                        max_envs=before.max_envs,
                        cpu=before.cpu,
                        memory_bytes=before.memory_bytes,
                        disk_bytes=before.disk_bytes,
                    ),
                )
                converge_project(context, user)
                if changes.max_egress is not None:
                    user = context.database.users.set_max_egress(name, changes.max_egress)
                revert.success()
        return describe_user(context, user)


def _push_keys(context: Context, user: str, actor: str) -> key_push.KeyPush:
    # The jump account first: a removed key's open sessions end before any environment is asked.
    ssh_access.converge_user(context, user, actor)
    return key_push.push_keys(context, user, actor)


def add_key(
    context: Context, actor: str, name: str, text: str
) -> tuple[SshKeyRecord, key_push.KeyPush]:
    """Add a public key to a user and to every environment of theirs; say where it went."""
    key = parse_public_key(text)
    with audited(context, actor, "added key of user", name, {"fingerprint": key.fingerprint}):
        record = context.database.users.add_key(
            check_user_name(name), key.fingerprint, key.line, key.comment
        )
        return record, _push_keys(context, name, actor)


def add_keys(
    context: Context, actor: str, name: str, texts: Sequence[str]
) -> tuple[list[SshKeyRecord], key_push.KeyPush]:
    """Add several public keys to a user, all or none, and push them once (a key file)."""
    keys = parse_key_list(texts)
    fingerprints: list[JsonValue] = [key.fingerprint for key in keys]
    with audited(context, actor, "added keys of user", name, {"fingerprints": fingerprints}):
        check_user_name(name)
        with Reverter() as revert:
            records = []
            for key in keys:
                records.append(
                    context.database.users.add_key(name, key.fingerprint, key.line, key.comment)
                )
                undo = functools.partial(context.database.users.remove_key, name, key.fingerprint)
                revert.add(f"forget the key {key.fingerprint}", undo)
            revert.success()
        return records, _push_keys(context, name, actor)


def remove_key(context: Context, actor: str, name: str, fingerprint: str) -> key_push.KeyPush:
    """Remove a public key from a user and from every environment of theirs; say where."""
    with audited(context, actor, "removed key of user", name, {"fingerprint": fingerprint}):
        context.database.users.remove_key(check_user_name(name), fingerprint)
        return _push_keys(context, name, actor)


def request_remove(context: Context, actor: str, name: str, *, purge: bool) -> str:
    """Remove a user (and with purge, their environments) in the background."""
    target = name
    with audited(context, actor, "removed user", target, {"purge": purge}, only_failure=True):
        check_user_name(name)
        context.database.users.get(name)
        count = context.database.environments.count(name)
        if count and not purge:
            raise Conflict(
                f"User {name!r} still has {count} environment(s); remove them first or add "
                "--purge to delete them with the user."
            )

    def work(progress: environments.Progress) -> None:
        for env in context.database.environments.list(name):
            progress(f"deleting {name}/{env.name}")
            environments.destroy(context, name, env.name)
        progress("deleting the LXD project")
        _remove_project(context, name)
        ssh_access.remove_account(context, name, actor)
        context.database.users.delete(name)

    return submit_audited(
        context, actor, "removed user", target, work, {"purge": purge}, kind="remove user"
    )


def _remove_project(context: Context, user: str) -> None:
    """Delete the user's LXD project, with any instance left in it (a template, say)."""
    project = project_name(user)
    projects = context.projects()
    if projects.get_project(project) is not None:
        instances = context.instances(project)
        for instance in instances.list():
            instances.delete(instance.name)
        projects.delete_project(project)
