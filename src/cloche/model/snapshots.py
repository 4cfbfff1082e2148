"""Pure typed values for the time machine: retention policy, snapshots and scheduled names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from cloche.model.errors import Invalid

SnapshotKind = Literal["scheduled", "manual"]
SNAPSHOT_KINDS: tuple[SnapshotKind, ...] = ("scheduled", "manual")

Tier = Literal["quarter-hourly", "hourly", "daily", "weekly", "monthly"]
# Finest first: the planner takes scheduled snapshots at the pace of the finest enabled tier.
TIERS: tuple[Tier, ...] = ("quarter-hourly", "hourly", "daily", "weekly", "monthly")
# The tiers of a retention policy, as config keys, API fields and CLI options (--quarter-hourly).
POLICY_FIELDS: tuple[str, ...] = ("quarter_hourly", "hourly", "daily", "weekly", "monthly")
POLICY_MAX = 10_000

# Scheduled snapshots are named after the UTC minute they were taken, e.g. auto-20261122T1915Z;
# the prefix is reserved, and every other name is a manual snapshot that is never pruned.
SCHEDULED_PREFIX = "auto-"
_SCHEDULED = re.compile(r"auto-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})Z")


def _utc(what: str, value: object) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise Invalid(f"{what} must be a timezone-aware datetime, not {value!r}; give it in UTC.")
    return value.astimezone(UTC)


def scheduled_name(at: datetime) -> str:
    """The name of a scheduled snapshot taken at `at` (UTC, to the minute)."""
    t = _utc("A snapshot time", at)
    return f"{SCHEDULED_PREFIX}{t.year:04d}{t.month:02d}{t.day:02d}T{t.hour:02d}{t.minute:02d}Z"


def parse_scheduled_name(name: str) -> datetime | None:
    """The UTC minute a scheduled snapshot name encodes, or None if it is not one (so manual)."""
    match = _SCHEDULED.fullmatch(name)
    if match is None:
        return None
    year, month, day, hour, minute = (int(part) for part in match.groups())
    try:
        return datetime(year, month, day, hour, minute, tzinfo=UTC)
    except ValueError:  # e.g. month 13: shaped like ours but not ours, so a manual name
        return None


def snapshot_kind(name: str) -> SnapshotKind:
    """'scheduled' if the name follows the scheduled naming convention, else 'manual'."""
    return "manual" if parse_scheduled_name(name) is None else "scheduled"


@dataclass(frozen=True)
class Snapshot:
    """One snapshot of an environment: its name, when it was taken (UTC) and its kind."""

    name: str
    created_at: datetime
    kind: SnapshotKind

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise Invalid(f"A snapshot name must be a non-empty string, not {self.name!r}.")
        # Normalised to UTC so that every comparison and bucket is computed on one clock.
        object.__setattr__(self, "created_at", _utc("A snapshot's creation time", self.created_at))
        if self.kind not in SNAPSHOT_KINDS:
            raise Invalid(f"Snapshot kind {self.kind!r} is not known; use 'scheduled' or 'manual'.")
        if self.kind == "scheduled" and parse_scheduled_name(self.name) is None:
            raise Invalid(
                f"Scheduled snapshot {self.name!r} does not follow the naming convention; "
                f"name it like {scheduled_name(self.created_at)!r} or mark it manual."
            )

    @classmethod
    def observed(cls, name: str, created_at: datetime) -> Snapshot:
        """A snapshot found on the host, its kind told by its name."""
        return cls(name=name, created_at=created_at, kind=snapshot_kind(name))


def _count(tier: Tier, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"The {tier} snapshot count must be a whole number, not {value!r}.")
    if value < 0:
        raise Invalid(f"The {tier} snapshot count is {value}; it must be 0 or more.")


@dataclass(frozen=True)
class RetentionPolicy:
    """How many scheduled snapshots each tier keeps: the newest of each of its last N periods."""

    quarter_hourly: int = 4
    hourly: int = 24
    daily: int = 14
    weekly: int = 0
    monthly: int = 3

    def __post_init__(self) -> None:
        for tier, count in self.counts():
            _count(tier, count)

    def counts(self) -> tuple[tuple[Tier, int], ...]:
        """Each tier with its count, finest first."""
        return (
            ("quarter-hourly", self.quarter_hourly),
            ("hourly", self.hourly),
            ("daily", self.daily),
            ("weekly", self.weekly),
            ("monthly", self.monthly),
        )

    def finest_enabled(self) -> Tier | None:
        """The finest tier that keeps anything, or None when scheduled snapshots are off."""
        return next((tier for tier, count in self.counts() if count > 0), None)


@dataclass(frozen=True)
class SnapshotPlan:
    """What to do now: the scheduled snapshot to take (or None) and the snapshots to delete."""

    create: str | None
    delete: tuple[str, ...]
