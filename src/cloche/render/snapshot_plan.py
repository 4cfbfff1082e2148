"""Pure: the time machine's planner, (now, snapshots, policy, jitter) -> (create, delete).

A scheduler calls `plan_snapshots` often (every few minutes) and applies the plan: take the
snapshot named `create` (if any) and delete the snapshots named in `delete` (oldest first). The
planner looks only at `now` and at what exists, so it keeps no state and survives restarts.

Periods. Every tier cuts time into periods: a 15-minute slot, an hour, a day, an ISO week (Monday
to Sunday) or a calendar month, all in UTC but each starting `jitter` after the UTC boundary (with
a jitter of 7m30s, hours run 10:07:30-11:07:30 and days and months start at 00:07:30), so that the
envs of one host do not all snapshot at the same instant. The jitter, in [0, 15 minutes), comes
from `jitter_for(env key)`. Every period starts on a slot boundary, so slots nest in hours, hours
in days, and so on.

Retention (like restic's `forget --keep-*`). Only scheduled snapshots dated at or before `now` take
part. For each tier with count N, group them by the tier's period and keep the newest snapshot
(latest `created_at`, ties to the greater name) of each of the N most recent periods that contain
a snapshot: periods without one (downtime) are skipped, not counted. A snapshot kept by any tier
is kept; every other scheduled snapshot is deleted. Never deleted: manual snapshots (names not
following the scheduled convention) and snapshots dated after `now` (the clock went back; they
take part once their time has come).

Creation. The pace is the period of the finest tier whose count is above 0 (normally the 15-minute
slot; if every count is 0, nothing is ever created). Take a scheduled snapshot, named
`scheduled_name(now)`, unless a scheduled snapshot (of any date) already lies in the current
period of the pace; manual snapshots do not count. After downtime this creates exactly one
snapshot, the current one, never one per missed period. If the name is already taken (only when a
snapshot's name and its creation time disagree), nothing is created. Retention counts the new
snapshot as if it existed (it is the newest, so always kept), which makes plans idempotent:
applying one and planning again at the same `now` gives an empty plan.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from cloche.model.errors import Invalid
from cloche.model.snapshots import (
    RetentionPolicy,
    Snapshot,
    SnapshotPlan,
    Tier,
    scheduled_name,
)

SLOT = timedelta(minutes=15)
_MICROSECOND = timedelta(microseconds=1)
_DAY_US = timedelta(days=1) // _MICROSECOND
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.date().toordinal()
# The periods of fixed length, as (offset, length) in microseconds since the jittered epoch.
_FIXED: dict[Tier, tuple[int, int]] = {
    "quarter-hourly": (0, SLOT // _MICROSECOND),
    "hourly": (0, timedelta(hours=1) // _MICROSECOND),
    "daily": (0, _DAY_US),
    # 1970-01-01 was a Thursday: counting weeks from the Monday before makes them ISO weeks.
    "weekly": (3 * _DAY_US, 7 * _DAY_US),
}


def jitter_for(env_key: str, period: timedelta = SLOT) -> timedelta:
    """A stable offset in [0, period), whole seconds, drawn from a hash of the env's key."""
    seconds = int(period.total_seconds())
    if seconds < 1:
        raise Invalid(f"The jitter period is {period}; it must be at least one second.")
    # sha256, not hash(): Python salts str hashes per process, and the jitter must survive restarts.
    digest = hashlib.sha256(env_key.encode()).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % seconds)


def _start(tier: Tier, shifted: int) -> int:
    # Times are integer microseconds since the jittered epoch: exact, and cheap to compare.
    fixed = _FIXED.get(tier)
    if fixed is not None:
        offset, length = fixed
        return (shifted + offset) // length * length - offset
    day = date.fromordinal(_EPOCH_ORDINAL + shifted // _DAY_US)
    return (day.toordinal() - day.day + 1 - _EPOCH_ORDINAL) * _DAY_US


def period_start(tier: Tier, at: datetime, jitter: timedelta) -> datetime:
    """When the tier's period holding `at` starts (UTC periods, started `jitter` later)."""
    base = _EPOCH + jitter
    return base + timedelta(microseconds=_start(tier, (at - base) // _MICROSECOND))


def _check_inputs(now: datetime, existing: Sequence[Snapshot], jitter: timedelta) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise Invalid(f"The planning time {now!r} has no timezone; give it in UTC.")
    if not timedelta(0) <= jitter < SLOT:
        raise Invalid(f"The snapshot jitter is {jitter}; use jitter_for(key), in [0, 15 minutes).")
    names = [snapshot.name for snapshot in existing]
    if len(set(names)) != len(names):
        duplicate = next(name for name in names if names.count(name) > 1)
        raise Invalid(f"Snapshot {duplicate!r} is listed twice; list each snapshot once.")


def _kept(times: Sequence[int], names: Sequence[str], policy: RetentionPolicy) -> set[str]:
    # times ascend (ties ordered by name), so the newest snapshot of the period that ends at
    # index `end` is times[end - 1], and the next older period ends where this one starts.
    kept: set[str] = set()
    for tier, count in policy.counts():
        end = len(times)
        fixed = _FIXED.get(tier)
        for _ in range(min(count, end)):
            newest = times[end - 1]
            kept.add(names[end - 1])
            if fixed is None:
                start = _start(tier, newest)
            else:  # inlined: this loop is the planner's hot path
                offset, length = fixed
                start = (newest + offset) // length * length - offset
            end = bisect_left(times, start, 0, end)
            if end == 0:
                break
    return kept


def plan_snapshots(
    now: datetime,
    existing: Sequence[Snapshot],
    policy: RetentionPolicy,
    *,
    jitter: timedelta,
) -> SnapshotPlan:
    """The snapshot to take now (or None) and the snapshots to delete, per the module's rules."""
    _check_inputs(now, existing, jitter)
    base = _EPOCH + jitter
    present = (now - base) // _MICROSECOND
    scheduled = sorted(
        ((s.created_at - base) // _MICROSECOND, s.name) for s in existing if s.kind == "scheduled"
    )
    times = [time for time, _ in scheduled]

    create: str | None = None
    pace = policy.finest_enabled()
    if pace is not None:
        current = _start(pace, present)
        # Any scheduled one counts, even a few seconds in the future: one per period is enough.
        first = bisect_left(times, current)
        taken = first < len(times) and _start(pace, times[first]) == current
        name = scheduled_name(now)
        if not taken and all(s.name != name for s in existing):
            create = name

    # Only the past takes part; a created snapshot is the newest of it (its period had none).
    cut = bisect_right(times, present)
    times = times[:cut]
    names = [name for _, name in scheduled[:cut]]
    if create is not None:
        times.append(present)
        names.append(create)
    kept = _kept(times, names, policy)
    return SnapshotPlan(create=create, delete=tuple(name for name in names if name not in kept))
