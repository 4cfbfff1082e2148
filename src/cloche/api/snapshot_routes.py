"""The time machine's routes: .../{user}/{name}/snapshots and .../snapshot-policy."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from cloche.api.schemas import Actor
from cloche.core import snapshots
from cloche.core.context import Context

Count = Annotated[int, Field(ge=0, le=snapshots.POLICY_MAX)]
BASE = "/v1/environments/{user}/{name}"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TakeSnapshot(_Body):
    """POST .../snapshots: a label, or none for manual-<UTC time>."""

    label: str | None = None


class RestoreSnapshot(_Body):
    """POST .../snapshots/{snapshot}/restore: in place, or as a new environment."""

    as_new: str | None = None


class SnapshotPolicy(_Body):
    """PATCH .../snapshot-policy: tiers to override (others keep theirs); reset drops all first."""

    quarter_hourly: Count | None = None
    hourly: Count | None = None
    daily: Count | None = None
    weekly: Count | None = None
    monthly: Count | None = None
    reset: bool = False


def register_snapshot_routes(app: FastAPI, context: Context) -> None:
    """Add the snapshot routes to app, ahead of its catch-all environment actions."""

    @app.get(f"{BASE}/snapshots")
    def list_snapshots(user: str, name: str) -> list[dict[str, Any]]:
        return snapshots.list_snapshots(context, user, name)

    @app.post(f"{BASE}/snapshots", status_code=201)
    def take_snapshot(
        user: str, name: str, request: TakeSnapshot, actor: Actor = "unknown"
    ) -> dict[str, Any]:
        return snapshots.take_snapshot(context, actor, user, name, request.label)

    @app.delete(f"{BASE}/snapshots/{{snapshot}}")
    def remove_snapshot(
        user: str, name: str, snapshot: str, actor: Actor = "unknown"
    ) -> dict[str, str]:
        snapshots.remove_snapshot(context, actor, user, name, snapshot)
        return {"removed": snapshot}

    @app.post(f"{BASE}/snapshots/{{snapshot}}/restore", status_code=202)
    def restore(
        user: str, name: str, snapshot: str, request: RestoreSnapshot, actor: Actor = "unknown"
    ) -> dict[str, str]:
        if request.as_new is None:
            return {"operation": snapshots.request_restore(context, actor, user, name, snapshot)}
        return {
            "operation": snapshots.request_restore_as_new(
                context, actor, user, name, snapshot, request.as_new
            )
        }

    @app.get(f"{BASE}/snapshot-policy")
    def policy(user: str, name: str) -> dict[str, Any]:
        return snapshots.snapshot_policy(context, user, name)

    @app.patch(f"{BASE}/snapshot-policy")
    def set_policy(
        user: str, name: str, request: SnapshotPolicy, actor: Actor = "unknown"
    ) -> dict[str, Any]:
        changes = request.model_dump(exclude={"reset"}, exclude_none=True)
        return snapshots.set_snapshot_policy(
            context, actor, user, name, changes, reset=request.reset
        )
