"""The time machine's routes: .../{user}/{name}/snapshots and .../snapshot-policy."""

from __future__ import annotations

from fastapi import FastAPI

from cloche import wire
from cloche.api import mapping
from cloche.api.authorization import Actor
from cloche.api.schemas import ACCEPTED, errors
from cloche.core import snapshots
from cloche.core.context import Context

BASE = "/v1/environments/{user}/{name}"


def register_snapshot_routes(app: FastAPI, context: Context) -> None:
    """Add the snapshot routes to app."""

    @app.get(f"{BASE}/snapshots", responses=errors(404, 422))
    def list_snapshots(user: str, name: str) -> list[wire.Snapshot]:
        return [mapping.snapshot(each) for each in snapshots.list_snapshots(context, user, name)]

    @app.post(f"{BASE}/snapshots", status_code=201, responses=errors(404, 409, 422))
    def take_snapshot(
        user: str, name: str, request: wire.TakeSnapshot, actor: Actor = "unknown"
    ) -> wire.Snapshot:
        return mapping.snapshot(snapshots.take_snapshot(context, actor, user, name, request.label))

    @app.delete(f"{BASE}/snapshots/{{snapshot}}", responses=errors(404, 422))
    def remove_snapshot(
        user: str, name: str, snapshot: str, actor: Actor = "unknown"
    ) -> wire.SnapshotRemoved:
        snapshots.remove_snapshot(context, actor, user, name, snapshot)
        return wire.SnapshotRemoved(removed=snapshot)

    @app.post(
        f"{BASE}/snapshots/{{snapshot}}/restore",
        status_code=202,
        response_description=ACCEPTED,
        responses=errors(403, 404, 409, 422),
    )
    def restore(
        user: str,
        name: str,
        snapshot: str,
        request: wire.RestoreSnapshot,
        actor: Actor = "unknown",
    ) -> wire.OperationAccepted:
        if request.as_new is None:
            operation = snapshots.request_restore(context, actor, user, name, snapshot)
        else:
            operation = snapshots.request_restore_as_new(
                context, actor, user, name, snapshot, request.as_new
            )
        return wire.OperationAccepted(operation=operation)

    @app.get(f"{BASE}/snapshot-policy", responses=errors(404, 422))
    def policy(user: str, name: str) -> wire.SnapshotPolicy:
        return mapping.snapshot_policy(snapshots.snapshot_policy(context, user, name))

    @app.patch(f"{BASE}/snapshot-policy", responses=errors(404, 422))
    def set_policy(
        user: str, name: str, request: wire.SetSnapshotPolicy, actor: Actor = "unknown"
    ) -> wire.SnapshotPolicy:
        changes = request.model_dump(exclude={"reset"}, exclude_none=True)
        return mapping.snapshot_policy(
            snapshots.set_snapshot_policy(context, actor, user, name, changes, reset=request.reset)
        )
