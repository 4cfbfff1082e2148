"""Snapshots of instances: taken, listed, deleted, restored in place and copied as new."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloche.model.errors import Invalid, NotFound
from cloche.model.instances import InstanceInfo, SnapshotInfo
from cloche.runtime.instance_lifecycle import InstanceLifecycle
from cloche.runtime.lxd_records import lxd_time, snapshot_info


class InstanceSnapshots(InstanceLifecycle):
    """The instances of one project with their snapshots (a copy of one is a new instance)."""

    def snapshot(self, name: str, snapshot: str, timeout: float = 300) -> SnapshotInfo:
        """Take a stateless snapshot of an instance (running or not); Conflict if taken."""
        body = {"name": snapshot, "stateful": False}
        with self.api.refusals(f"snapshot {name!r} as {snapshot!r}"):
            self.api.send_when_free("post", ("instances", name, "snapshots"), timeout, body=body)
            raw = self.api.read(("instances", name, "snapshots", snapshot))
        return SnapshotInfo(name=snapshot, created_at=lxd_time(str(raw["created_at"])))

    def list_snapshots(self, name: str) -> tuple[SnapshotInfo, ...]:
        """Every snapshot of an instance, oldest first."""
        with self.api.refusals(f"list the snapshots of {name!r}"):
            raws = self.api.read_all(("instances", name, "snapshots"))
        snapshots = [snapshot_info(raw) for raw in raws]
        return tuple(sorted(snapshots, key=lambda snapshot: (snapshot.created_at, snapshot.name)))

    def delete_snapshot(self, name: str, snapshot: str, timeout: float = 120) -> None:
        """Delete one snapshot of an instance; NotFound when it does not exist."""
        with self.api.refusals(f"delete snapshot {snapshot!r} of {name!r}"):
            self.api.send_when_free("delete", ("instances", name, "snapshots", snapshot), timeout)

    def restore_snapshot(self, name: str, snapshot: str, timeout: float = 300) -> None:
        """Put an instance back to a snapshot (files, config, devices) in place.

        LXD does it in one operation: a running instance is stopped (killed: its disk is about to
        be replaced), restored and started again; a stopped one stays stopped. Measured on a btrfs
        pool: 1.5-1.9 s, against 2.3-2.9 s for a graceful stop, a restore and a start.
        """
        self.require_snapshot(name, snapshot)
        body = {"restore": snapshot}
        with self.api.refusals(f"restore {name!r} to snapshot {snapshot!r}"):
            self.api.send_when_free("put", ("instances", name), timeout, body=body)

    def create_from_snapshot(
        self, request: Mapping[str, Any], timeout: float = 300
    ) -> InstanceInfo:
        """Create an instance (stopped) as a copy of another's snapshot ("instance/snapshot").

        LXD gives the copy a new MAC address and applies the image's 'copy' templates at its
        first start (measured in 5.0.2: volatile.apply_template=copy), so it gets a new
        machine-id and new SSH host keys. The request's devices replace the source's (give eth0
        a new static address), and its profiles and config keys win over the source's.
        """
        source = request.get("source") or {}
        origin = str(source.get("source") or "")
        if source.get("type") != "copy" or origin.count("/") != 1:
            raise Invalid(
                f"Environment {request.get('name')!r} must be copied from a snapshot named "
                "'instance/snapshot'; render its request with source_instance."
            )
        self.require_snapshot(*origin.split("/"))
        return self.create(request, timeout)

    def require_snapshot(self, name: str, snapshot: str) -> SnapshotInfo:
        """The snapshot of an instance; NotFound (naming how to find one) when it does not exist."""
        for known in self.list_snapshots(name):
            if known.name == snapshot:
                return known
        raise NotFound(
            f"Environment {name!r} in project {self.project} has no snapshot {snapshot!r}; "
            "list its snapshots to pick one."
        )
