"""Core's records and values as wire models: the one place each resource takes its JSON shape."""

from __future__ import annotations

import base64
from dataclasses import asdict
from typing import Any

from cloche import wire
from cloche.core.backup_repositories import AddedRepository, ListedRepository
from cloche.core.backup_retention import RepositoryCheck
from cloche.core.environments import EnvironmentDetail, EnvironmentView
from cloche.core.firewall import EgressChange
from cloche.core.key_push import KeyPush
from cloche.core.routes import PortRouteView, Publication, RouteView
from cloche.core.snapshots import PolicyView
from cloche.core.ssh_access import SshFiles
from cloche.core.users import UserDetail, UserView
from cloche.model.audit import AuditEvent, VerifyResult
from cloche.model.backups import BackupEntry
from cloche.model.bans import Ban
from cloche.model.errors_wire import stored_error_body
from cloche.model.instances import ExecResult
from cloche.model.records import OperationRecord, RouteRecord, SshKeyRecord
from cloche.model.routes import parse_route, route_kind
from cloche.model.snapshots import Snapshot
from cloche.model.tokens import TokenRecord
from cloche.model.units import format_size


def _fields(model: wire.WireModel) -> dict[str, Any]:
    """A model's fields by name, values as they are (a model to extend into a larger one)."""
    return {name: getattr(model, name) for name in type(model).model_fields}


# Users -----------------------------------------------------------------------------------------


def user(view: UserView) -> wire.User:
    """A user with quotas and usage."""
    record = view.record
    return wire.User(
        name=record.name,
        role=record.role,
        max_envs=record.max_envs,
        cpu=record.cpu,
        memory=format_size(record.memory_bytes),
        disk=format_size(record.disk_bytes),
        uid_base=record.uid_base,
        uid_size=record.uid_size,
        project=view.project,
        environments=view.environment_count,
        keys=view.key_count,
        created_at=record.created_at.isoformat(),
        host_account=record.host_account,
        max_egress=record.max_egress,
    )


def user_detail(detail: UserDetail) -> wire.UserDetail:
    """One user with their keys and environment names."""
    return wire.UserDetail(
        **_fields(user(detail)),
        ssh_keys=[
            wire.Key(fingerprint=key.fingerprint, comment=key.comment, public_key=key.public_key)
            for key in detail.keys
        ],
        environment_names=list(detail.environment_names),
    )


def key_push(push: KeyPush) -> wire.KeyPush:
    """Where a key change went."""
    return wire.KeyPush(
        pushed=list(push.pushed), waiting=list(push.waiting), failed=dict(push.failed)
    )


def key_added(record: SshKeyRecord, push: KeyPush) -> wire.KeyAdded:
    """A key just added, and where it went."""
    return wire.KeyAdded(
        fingerprint=record.fingerprint, comment=record.comment, push=key_push(push)
    )


def ssh_config(files: SshFiles) -> wire.SshConfig:
    """A user's ssh_config and known_hosts texts."""
    return wire.SshConfig(config=files.config, known_hosts=files.known_hosts)


# Environments ----------------------------------------------------------------------------------


def environment(view: EnvironmentView) -> wire.Environment:
    """An environment with its live state."""
    record = view.record
    return wire.Environment(
        user=record.user,
        name=record.name,
        status=record.status,
        state=view.state,
        address=view.address,
        image=record.image,
        profile=record.profile,
        limits=wire.Limits(
            cpu=record.cpu,
            memory=format_size(record.memory_bytes),
            disk=format_size(record.disk_bytes),
            processes=record.processes,
        ),
        host_keys=dict(record.host_keys or {}),
        egress=record.egress,
        created_at=record.created_at.isoformat(),
    )


def environment_info(detail: EnvironmentDetail) -> wire.EnvironmentInfo:
    """One environment with its routes."""
    return wire.EnvironmentInfo(**_fields(environment(detail)), routes=list(detail.routes))


def exec_result(result: ExecResult) -> wire.ExecResult:
    """A command's exit code and output, as base64."""
    return wire.ExecResult(
        exit_code=result.exit_code,
        stdout_base64=base64.b64encode(result.stdout).decode(),
        stderr_base64=base64.b64encode(result.stderr).decode(),
    )


def egress(user_name: str, name: str, policy: str) -> wire.Egress:
    """An environment's stored egress policy."""
    return wire.Egress(user=user_name, name=name, egress=policy)


def egress_changed(change: EgressChange) -> wire.EgressChanged:
    """The egress policy now in force and the one before."""
    return wire.EgressChanged(
        user=change.user, name=change.name, egress=change.egress, previous=change.previous
    )


# Operations and audit --------------------------------------------------------------------------


def operation(record: OperationRecord) -> wire.Operation:
    """An operation's progress and, once failed, its error body."""
    error = stored_error_body(record.error)
    return wire.Operation(
        id=record.id,
        kind=record.kind,
        target=record.target,
        status=record.status,
        progress=record.progress,
        error=None if error is None else wire.ErrorBody.model_validate(error),
        created_at=record.created_at.isoformat(),
        finished_at=record.finished_at.isoformat() if record.finished_at else None,
    )


def audit_event(event: AuditEvent) -> wire.AuditEvent:
    """One audit event (its JSON form is the log's own, model/audit.py)."""
    return wire.AuditEvent.model_validate(event.to_dict())


def audit_verification(result: VerifyResult) -> wire.AuditVerification:
    """The verdict on the audit log's hash chain."""
    return wire.AuditVerification(
        ok=result.ok,
        count=result.count,
        first_bad_line=result.first_bad_line,
        reason=result.reason,
    )


# Snapshots -------------------------------------------------------------------------------------


def snapshot(taken: Snapshot) -> wire.Snapshot:
    """One snapshot of an environment."""
    return wire.Snapshot(name=taken.name, created_at=taken.created_at.isoformat(), kind=taken.kind)


def snapshot_policy(policy: PolicyView) -> wire.SnapshotPolicy:
    """An environment's retention overrides and the counts in effect."""
    return wire.SnapshotPolicy(
        environment=policy.environment,
        scheduler_enabled=policy.scheduler_enabled,
        overrides=dict(policy.overrides),
        effective=wire.RetentionCounts(**asdict(policy.effective)),
    )


# Routes ----------------------------------------------------------------------------------------


def route(view: RouteView) -> wire.PortRoute | wire.HttpRoute:
    """A published route: where it is reached and where it leads."""
    record = view.record
    created_at = record.created_at.isoformat()
    if isinstance(view, PortRouteView):
        return wire.PortRoute(
            user=record.user,
            name=record.name,
            spec=record.spec,
            created_at=created_at,
            kind=view.route.protocol,
            public=view.public,
            target=view.target,
            device=view.device,
        )
    return wire.HttpRoute(
        user=record.user,
        name=record.name,
        spec=record.spec,
        created_at=created_at,
        kind=view.route.scheme,
        public=view.public,
        target=view.target,
    )


def published_route(
    publication: Publication,
) -> wire.PublishedPortRoute | wire.PublishedHttpRoute:
    """A route just published, and whether it was new."""
    shown = route(publication.route)
    if isinstance(shown, wire.PortRoute):
        return wire.PublishedPortRoute(**_fields(shown), changed=publication.changed)
    return wire.PublishedHttpRoute(**_fields(shown), changed=publication.changed)


def route_removed(record: RouteRecord) -> wire.RouteRemoved:
    """A route just withdrawn."""
    return wire.RouteRemoved(
        user=record.user,
        name=record.name,
        spec=record.spec,
        kind=route_kind(parse_route(record.spec)),
    )


# Backups ---------------------------------------------------------------------------------------


def repository_added(added: AddedRepository) -> wire.RepositoryAdded:
    """A repository just added (never a secret)."""
    shown = added.repository
    return wire.RepositoryAdded(name=shown.name, kind=shown.kind, url=shown.url, state=added.state)


def repository(listed: ListedRepository) -> wire.Repository:
    """A repository cloche knows (never a secret)."""
    shown = listed.repository
    return wire.Repository(name=shown.name, kind=shown.kind, url=shown.url, default=listed.default)


def backup(entry: BackupEntry) -> wire.Backup:
    """One backup of an environment."""
    return wire.Backup(
        id=entry.id,
        repository=entry.repository,
        environment=entry.environment,
        time=entry.time,
        snapshot=entry.snapshot,
        data_added=entry.data_added,
        total_bytes=entry.total_bytes,
    )


def repository_checked(check: RepositoryCheck) -> wire.RepositoryChecked:
    """A repository that passed its check."""
    return wire.RepositoryChecked(
        repository=check.repository, ok=check.ok, read_data=check.read_data
    )


# The host --------------------------------------------------------------------------------------


def ban(record: Ban) -> wire.Ban:
    """An address banned for failing to sign in to sshd."""
    return wire.Ban(
        address=record.address,
        until=record.until.isoformat(),
        created=record.created.isoformat(),
        failures=record.failures,
    )


def token(record: TokenRecord) -> wire.Token:
    """A token, without its secret."""
    return wire.Token(
        id=record.id,
        user=record.user,
        name=record.name,
        scopes=sorted(record.scopes),
        environments=None if record.environments is None else sorted(record.environments),
        created=record.created.isoformat(),
        expires=record.expires.isoformat(),
        last_used=record.last_used.isoformat() if record.last_used else None,
        revoked=record.revoked,
    )
