"""The time machine: an environment's snapshots, their retention policy, and restores."""

from __future__ import annotations

from cloche.client.connection import path_of
from cloche.client.operations import DEFAULT_WAIT, OperationHandle
from cloche.client.resource import Resource, given
from cloche.wire import Snapshot, SnapshotPolicy, SnapshotRemoved


def _snapshots(user: str, name: str, *rest: str) -> str:
    return path_of("environments", user, name, "snapshots", *rest)


class Snapshots(Resource):
    """/v1/environments/{user}/{name}/snapshots and .../snapshot-policy."""

    def take(self, user: str, name: str, label: str | None = None) -> Snapshot:
        """Take a manual snapshot now (named label, or manual-<UTC time>); never pruned."""
        return self._connection.fetch(
            Snapshot, "POST", _snapshots(user, name), body={"label": label}
        )

    def list(self, user: str, name: str) -> list[Snapshot]:
        """An environment's snapshots, oldest first (scheduled or manual)."""
        return self._connection.fetch_list(Snapshot, _snapshots(user, name))

    def remove(self, user: str, name: str, snapshot: str) -> SnapshotRemoved:
        """Delete one snapshot."""
        return self._connection.fetch(SnapshotRemoved, "DELETE", _snapshots(user, name, snapshot))

    def policy(self, user: str, name: str) -> SnapshotPolicy:
        """The environment's retention: its overrides and the counts in effect."""
        path = path_of("environments", user, name, "snapshot-policy")
        return self._connection.fetch(SnapshotPolicy, "GET", path)

    def set_policy(
        self,
        user: str,
        name: str,
        *,
        quarter_hourly: int | None = None,
        hourly: int | None = None,
        daily: int | None = None,
        weekly: int | None = None,
        monthly: int | None = None,
        reset: bool = False,
    ) -> SnapshotPolicy:
        """Override tiers of the retention (the others keep theirs); reset drops all first."""
        body = {
            **given(
                quarter_hourly=quarter_hourly,
                hourly=hourly,
                daily=daily,
                weekly=weekly,
                monthly=monthly,
            ),
            "reset": reset,
        }
        path = path_of("environments", user, name, "snapshot-policy")
        return self._connection.fetch(SnapshotPolicy, "PATCH", path, body=body)

    def restore(
        self,
        user: str,
        name: str,
        snapshot: str,
        *,
        wait: bool = False,
        timeout: float = DEFAULT_WAIT,
    ) -> OperationHandle:
        """Restore the environment to a snapshot in place (a running one restarts)."""
        path = _snapshots(user, name, snapshot, "restore")
        return self._start("POST", path, body={"as_new": None}, wait=wait, timeout=timeout)

    def restore_as_new(
        self,
        user: str,
        name: str,
        snapshot: str,
        new_name: str,
        *,
        wait: bool = False,
        timeout: float = DEFAULT_WAIT,
    ) -> OperationHandle:
        """Make a new environment of user's, new_name, from a snapshot (the source stays)."""
        path = _snapshots(user, name, snapshot, "restore")
        return self._start("POST", path, body={"as_new": new_name}, wait=wait, timeout=timeout)
