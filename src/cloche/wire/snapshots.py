"""The time machine: snapshots of an environment and its retention policy."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from cloche.model.snapshots import POLICY_MAX, SnapshotKind
from cloche.wire.base import WireModel

Count = Annotated[int, Field(ge=0, le=POLICY_MAX)]


class TakeSnapshot(WireModel):
    """POST .../snapshots: a label, or none for manual-<UTC time>."""

    label: str | None = None


class RestoreSnapshot(WireModel):
    """POST .../snapshots/{snapshot}/restore: in place, or as a new environment."""

    as_new: str | None = None


class SetSnapshotPolicy(WireModel):
    """PATCH .../snapshot-policy: tiers to override (others keep theirs); reset drops all first."""

    quarter_hourly: Count | None = None
    hourly: Count | None = None
    daily: Count | None = None
    weekly: Count | None = None
    monthly: Count | None = None
    reset: bool = False


class Snapshot(WireModel):
    """One snapshot: its name, when it was taken (ISO-8601) and whether it was scheduled."""

    name: str
    created_at: str
    kind: SnapshotKind


class SnapshotRemoved(WireModel):
    """DELETE .../snapshots/{snapshot}."""

    removed: str


class RetentionCounts(WireModel):
    """How many scheduled snapshots each tier keeps."""

    quarter_hourly: int
    hourly: int
    daily: int
    weekly: int
    monthly: int


class SnapshotPolicy(WireModel):
    """An environment's retention: its overrides (tier -> count) and the counts in effect."""

    environment: str
    scheduler_enabled: bool
    overrides: dict[str, int]
    effective: RetentionCounts
