"""The snapshot planner: simulated weeks, downtime, jitter, and properties against a reference."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloche.model.errors import Invalid
from cloche.model.snapshots import (
    RetentionPolicy,
    Snapshot,
    SnapshotPlan,
    Tier,
    parse_scheduled_name,
    scheduled_name,
    snapshot_kind,
)
from cloche.render.snapshot_plan import SLOT, jitter_for, period_start, plan_snapshots

TICK = timedelta(minutes=5)
DEFAULTS = RetentionPolicy()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- a deliberately simple reference: calendar fields, a dict per tier, sort, take N -------------


def ref_period(tier: Tier, when: datetime, jitter: timedelta) -> Hashable:
    t = when - jitter
    if tier == "quarter-hourly":
        return (t.date(), t.hour, t.minute // 15)
    if tier == "hourly":
        return (t.date(), t.hour)
    if tier == "daily":
        return t.date()
    if tier == "weekly":
        return t.isocalendar()[:2]
    return (t.year, t.month)


def reference_survivors(
    snapshots: Sequence[Snapshot], now: datetime, policy: RetentionPolicy, jitter: timedelta
) -> set[str]:
    """Every name that should exist after the plan (the created one included)."""
    scheduled = [s for s in snapshots if s.kind == "scheduled" and s.created_at <= now]
    survivors = {s.name for s in snapshots if s not in scheduled}
    for tier, count in policy.counts():
        newest: dict[Hashable, Snapshot] = {}
        for s in scheduled:
            key = ref_period(tier, s.created_at, jitter)
            if key not in newest or (s.created_at, s.name) > (
                newest[key].created_at,
                newest[key].name,
            ):
                newest[key] = s
        for key in sorted(newest, reverse=True)[:count]:  # type: ignore[type-var]
            survivors.add(newest[key].name)
    return survivors


def reference_create(
    existing: Sequence[Snapshot], now: datetime, policy: RetentionPolicy, jitter: timedelta
) -> str | None:
    enabled = [tier for tier, count in policy.counts() if count > 0]
    if not enabled:
        return None
    pace = enabled[0]
    current = ref_period(pace, now, jitter)
    if any(
        s.kind == "scheduled" and ref_period(pace, s.created_at, jitter) == current
        for s in existing
    ):
        return None
    name = scheduled_name(now)
    return None if name in {s.name for s in existing} else name


def apply(plan: SnapshotPlan, existing: Sequence[Snapshot], now: datetime) -> list[Snapshot]:
    doomed = set(plan.delete)
    after = [s for s in existing if s.name not in doomed]
    if plan.create is not None:
        after.append(Snapshot(name=plan.create, created_at=now, kind="scheduled"))
    return after


# --- a fake scheduler ---------------------------------------------------------------------------


@dataclass
class FakeHost:
    policy: RetentionPolicy
    jitter: timedelta
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    pace: timedelta = SLOT  # the finest enabled tier's period
    taken: list[datetime] = field(default_factory=list)  # every scheduled snapshot ever taken

    def tick(self, now: datetime) -> SnapshotPlan:
        plan = plan_snapshots(now, list(self.snapshots.values()), self.policy, jitter=self.jitter)
        if plan.create is not None:
            assert plan.create not in self.snapshots
            self.snapshots[plan.create] = Snapshot(plan.create, now, "scheduled")
            self.taken.append(now)
        for name in plan.delete:
            assert self.snapshots[name].kind == "scheduled"
            del self.snapshots[name]
        return plan

    def run(self, start: datetime, end: datetime) -> datetime:
        now = start
        while now < end:
            self.tick(now)
            assert now - self.taken[-1] < self.pace
            now += TICK
        return now

    def scheduled_times(self) -> set[datetime]:
        return {s.created_at for s in self.snapshots.values() if s.kind == "scheduled"}


def ref_period_start(tier: Tier, when: datetime, jitter: timedelta) -> datetime:
    t = when - jitter
    midnight = t.replace(hour=0, minute=0, second=0, microsecond=0)
    starts: dict[Tier, Callable[[], datetime]] = {
        "quarter-hourly": lambda: t.replace(minute=t.minute // 15 * 15, second=0, microsecond=0),
        "hourly": lambda: t.replace(minute=0, second=0, microsecond=0),
        "daily": lambda: midnight,
        "weekly": lambda: midnight - timedelta(days=t.weekday()),
        "monthly": lambda: midnight.replace(day=1),
    }
    return starts[tier]() + jitter


def newest_of_last_periods(
    taken: list[datetime], tier: Tier, count: int, jitter: timedelta
) -> list[datetime]:
    """Walk back period by period: the last snapshot taken before each period boundary."""
    kept = [taken[-1]]
    while len(kept) < count:
        index = bisect.bisect_left(taken, ref_period_start(tier, kept[-1], jitter))
        if index == 0:
            break
        kept.append(taken[index - 1])
    return kept


def expected_times(
    taken: list[datetime], policy: RetentionPolicy, jitter: timedelta
) -> set[datetime]:
    """What an uninterrupted run must have kept: each tier's walk back, together."""
    return {
        time
        for tier, count in policy.counts()
        if count
        for time in newest_of_last_periods(taken, tier, count, jitter)
    }


# --- simulated weeks ----------------------------------------------------------------------------


def test_ten_simulated_weeks_keep_exactly_what_the_policy_says() -> None:
    # One run (20,160 ticks) is the time budget; jitter 0 and 14:59 are hypothesis's to try.
    jitter = jitter_for("alice/web")
    host = FakeHost(DEFAULTS, jitter)
    start = at("2026-01-01T00:00:00")
    host.snapshots["before-upgrade"] = Snapshot(
        "before-upgrade", start - timedelta(days=40), "manual"
    )
    now = host.run(start, start + timedelta(weeks=5))
    assert host.scheduled_times() == expected_times(host.taken, DEFAULTS, jitter)
    host.snapshots["mid-run"] = Snapshot("mid-run", now - timedelta(minutes=2), "manual")
    now = host.run(now, start + timedelta(weeks=10))
    last = now - TICK

    # The scheduler took exactly one snapshot per jittered 15-minute slot, nothing more.
    assert len(host.taken) == len({ref_period("quarter-hourly", t, jitter) for t in host.taken})
    assert {later - earlier for earlier, later in pairwise(host.taken[1:])} == {SLOT}

    quarter = newest_of_last_periods(host.taken, "quarter-hourly", 4, jitter)
    hourly = newest_of_last_periods(host.taken, "hourly", 24, jitter)
    daily = newest_of_last_periods(host.taken, "daily", 14, jitter)
    monthly = newest_of_last_periods(host.taken, "monthly", 3, jitter)
    assert (len(quarter), len(hourly), len(daily), len(monthly)) == (4, 24, 14, 3)
    assert quarter == host.taken[-4:][::-1]
    # Apart from the newest, each hour/day/month keeps its last slot's snapshot.
    assert all((t - jitter).minute >= 45 for t in hourly[1:])
    assert all((t - jitter).hour == 23 for t in daily[1:])
    assert all((t - jitter + timedelta(days=1)).day == 1 for t in monthly[1:])
    assert len({ref_period("hourly", t, jitter) for t in hourly}) == 24
    assert len({ref_period("daily", t, jitter) for t in daily}) == 14
    assert len({ref_period("monthly", t, jitter) for t in monthly}) == 3

    assert host.scheduled_times() == set(quarter + hourly + daily + monthly)
    assert host.scheduled_times() == expected_times(host.taken, DEFAULTS, jitter)
    assert {"before-upgrade", "mid-run"} <= set(host.snapshots)
    assert last - max(host.scheduled_times()) < SLOT + jitter
    oldest_allowed = ref_period_start("monthly", last, jitter)
    for _ in range(2):
        oldest_allowed = ref_period_start("monthly", oldest_allowed - timedelta(days=1), jitter)
    assert min(host.scheduled_times()) >= oldest_allowed
    assert host.snapshots.keys() == reference_survivors(
        list(host.snapshots.values()), last, DEFAULTS, jitter
    )


def test_the_finest_enabled_tier_sets_the_pace() -> None:
    jitter = timedelta(minutes=9)
    policy = RetentionPolicy(quarter_hourly=0, hourly=3, daily=2, monthly=0)
    host = FakeHost(policy, jitter, pace=timedelta(hours=1))
    start = at("2026-05-04T00:00:00")
    host.run(start, start + timedelta(days=2))
    # The first tick (00:00) falls in the jittered hour 23:09-00:09; then one each hour at :10.
    assert len(host.taken) == 1 + 48
    assert all((t - jitter).minute < 5 for t in host.taken[1:])
    assert len(host.snapshots) == 3 + 1  # three hours, and the previous jittered day's last one


def test_weekly_tier_counts_iso_weeks() -> None:
    host = FakeHost(RetentionPolicy(0, 0, 0, 2, 0), timedelta(0), pace=timedelta(weeks=1))
    start = at("2026-03-02T00:00:00")  # a Monday
    host.run(start, start + timedelta(weeks=3))
    assert len(host.taken) == 3
    assert [t.weekday() for t in host.taken] == [0, 0, 0]
    assert host.scheduled_times() == set(host.taken[-2:])


# --- downtime -----------------------------------------------------------------------------------


def test_after_three_days_of_downtime_one_snapshot_is_taken_and_the_policy_pruned() -> None:
    jitter = jitter_for("bob/api")
    host = FakeHost(DEFAULTS, jitter)
    start = at("2026-02-01T00:05:00")  # after the jitter, so every snapshot is in February
    now = host.run(start, start + timedelta(days=16))
    before = dict(host.snapshots)
    newest_before = sorted(host.scheduled_times())[-3:]

    now += timedelta(days=3)
    plan = host.tick(now)
    assert plan.create == scheduled_name(now)
    assert host.taken[-1] == now
    assert set(plan.delete) <= set(before)
    assert set(host.snapshots) == reference_survivors(
        [*before.values(), Snapshot(scheduled_name(now), now, "scheduled")], now, DEFAULTS, jitter
    )
    # One new snapshot pushes at most the oldest period of each enabled tier out.
    assert 1 <= len(plan.delete) <= 4
    # Periods without snapshots are skipped: the last three from before the outage still count
    # as quarter-hourly ones, and the daily tier still reaches back fourteen days with snapshots.
    assert set(newest_before) <= host.scheduled_times()
    days = {ref_period("daily", t, jitter) for t in host.scheduled_times()}
    assert len(days) == 14

    assert host.tick(now) == SnapshotPlan(create=None, delete=())
    assert host.tick(now + TICK) == SnapshotPlan(create=None, delete=())


# --- properties against the reference -----------------------------------------------------------

BASE = at("2026-01-01T00:00:00")
policies = st.one_of(
    st.just(DEFAULTS),
    st.builds(
        RetentionPolicy,
        st.integers(0, 5),
        st.integers(0, 5),
        st.integers(0, 5),
        st.integers(0, 3),
        st.integers(0, 3),
    ),
)
# Mostly close to now (many per slot and hour, to exercise ties within periods), some far back,
# a few in the future (the clock went back).
offsets = st.one_of(st.integers(-2 * 86400, 0), st.integers(-120 * 86400, 2 * 3600))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[datetime, list[Snapshot], RetentionPolicy, timedelta]:
    now = BASE + timedelta(seconds=draw(st.integers(0, 400 * 86400)))
    jitter = timedelta(seconds=draw(st.integers(0, 899)))
    snapshots: dict[str, Snapshot] = {}
    micros = st.sampled_from([0, 1, 999_999])  # right at, just after, just before a second
    for offset, micro, manual, lag in draw(
        st.lists(st.tuples(offsets, micros, st.booleans(), st.integers(0, 119)), max_size=50)
    ):
        created = now + timedelta(seconds=offset, microseconds=micro)
        if manual:
            name = f"manual-{len(snapshots)}"
        else:
            # LXD stamps the snapshot a little after the planner named it.
            name = scheduled_name(created - timedelta(seconds=lag))
        snapshots.setdefault(name, Snapshot.observed(name, created))
    return now, list(snapshots.values()), draw(policies), jitter


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_plans_are_safe_idempotent_and_match_the_reference(
    scenario: tuple[datetime, list[Snapshot], RetentionPolicy, timedelta],
) -> None:
    now, existing, policy, jitter = scenario
    plan = plan_snapshots(now, existing, policy, jitter=jitter)
    by_name = {s.name: s for s in existing}

    assert all(by_name[name].kind == "scheduled" for name in plan.delete)  # (a) and (b)
    assert len(set(plan.delete)) == len(plan.delete)
    assert plan.create == reference_create(existing, now, policy, jitter)

    after = apply(plan, existing, now)
    assert plan_snapshots(now, after, policy, jitter=jitter) == SnapshotPlan(None, ())  # (c)

    assert {s.name for s in after} == reference_survivors(  # (d)
        apply(SnapshotPlan(plan.create, ()), existing, now), now, policy, jitter
    )


@settings(max_examples=50, deadline=None)
@given(scenarios())
def test_the_timezone_of_now_does_not_matter(
    scenario: tuple[datetime, list[Snapshot], RetentionPolicy, timedelta],
) -> None:
    now, existing, policy, jitter = scenario
    elsewhere = now.astimezone(timezone(timedelta(hours=-7, minutes=-30)))
    assert plan_snapshots(elsewhere, existing, policy, jitter=jitter) == plan_snapshots(
        now, existing, policy, jitter=jitter
    )


# --- particular cases ---------------------------------------------------------------------------


def test_first_call_on_a_new_env_takes_a_snapshot() -> None:
    now = at("2026-11-22T19:15:42")
    plan = plan_snapshots(now, [], DEFAULTS, jitter=timedelta(0))
    assert plan == SnapshotPlan(create="auto-20261122T1915Z", delete=())


def test_all_tiers_zero_never_creates_and_prunes_every_scheduled_snapshot() -> None:
    now = at("2026-06-01T12:00:00")
    existing = [
        Snapshot.observed("auto-20260601T1100Z", now - timedelta(hours=1)),
        Snapshot.observed("keep-me", now - timedelta(days=400)),
    ]
    plan = plan_snapshots(now, existing, RetentionPolicy(0, 0, 0, 0, 0), jitter=timedelta(0))
    assert plan == SnapshotPlan(create=None, delete=("auto-20260601T1100Z",))


def test_manual_snapshots_neither_count_nor_get_pruned() -> None:
    now = at("2026-06-01T12:01:00")
    existing = [Snapshot.observed(f"m{i}", now - timedelta(minutes=i)) for i in range(100)]
    plan = plan_snapshots(now, existing, RetentionPolicy(1, 0, 0, 0, 0), jitter=timedelta(0))
    assert plan == SnapshotPlan(create="auto-20260601T1201Z", delete=())


def test_snapshots_from_the_future_are_left_alone() -> None:
    now = at("2026-06-01T12:00:00")
    future = Snapshot.observed("auto-20260601T1400Z", now + timedelta(hours=2))
    old = Snapshot.observed("auto-20260601T1100Z", now - timedelta(hours=1))
    plan = plan_snapshots(now, [future, old], RetentionPolicy(1, 0, 0, 0, 0), jitter=timedelta(0))
    assert plan == SnapshotPlan(create="auto-20260601T1200Z", delete=("auto-20260601T1100Z",))


def test_a_taken_name_is_not_taken_again() -> None:
    # Named at 10:14 but stamped in the next slot (a slow snapshot, a skewed clock).
    now = at("2026-06-01T10:14:30")
    late = Snapshot.observed("auto-20260601T1014Z", at("2026-06-01T10:15:30"))
    assert plan_snapshots(now, [late], DEFAULTS, jitter=timedelta(0)) == SnapshotPlan(None, ())


def test_a_period_starts_at_its_first_microsecond() -> None:
    now = at("2026-06-01T10:30:00")
    existing = [
        Snapshot.observed("auto-20260601T1000Z", at("2026-06-01T10:00:00")),
        Snapshot.observed("auto-20260601T0959Z", at("2026-06-01T09:59:59.999999")),
        Snapshot.observed("auto-20260601T0930Z", at("2026-06-01T09:30:00")),
    ]
    plan = plan_snapshots(now, existing, RetentionPolicy(0, 2, 0, 0, 0), jitter=timedelta(0))
    assert plan == SnapshotPlan(create=None, delete=("auto-20260601T0930Z",))


def test_jitter_shifts_every_boundary() -> None:
    jitter = timedelta(minutes=7)
    # 00:05 on the 1st is before this env's month starts (00:07), so it belongs to January.
    assert period_start("monthly", at("2026-02-01T00:05:00"), jitter) == at("2026-01-01T00:07:00")
    assert period_start("monthly", at("2026-02-01T00:07:00"), jitter) == at("2026-02-01T00:07:00")
    assert period_start("daily", at("2026-02-01T00:05:00"), jitter) == at("2026-01-31T00:07:00")
    assert period_start("hourly", at("2026-02-01T10:06:59"), jitter) == at("2026-02-01T09:07:00")
    assert period_start("quarter-hourly", at("2026-02-01T10:30"), jitter) == at("2026-02-01T10:22")
    # ISO weeks start on Monday (2026-03-02, 1969-12-29), also across the epoch.
    assert period_start("weekly", at("2026-03-08T23:59:00"), jitter) == at("2026-03-02T00:07:00")
    assert period_start("weekly", at("2026-03-02T00:06:59"), jitter) == at("2026-02-23T00:07:00")
    assert period_start("weekly", at("1970-01-04T12:00"), timedelta(0)) == at("1969-12-29T00:00")
    assert period_start("monthly", at("1969-12-31T23:59"), timedelta(0)) == at("1969-12-01T00:00")


def test_names_follow_the_convention_and_parse_back() -> None:
    when = at("2026-11-22T19:15:59")
    assert scheduled_name(when) == "auto-20261122T1915Z"
    assert parse_scheduled_name("auto-20261122T1915Z") == at("2026-11-22T19:15:00")
    assert scheduled_name(when.astimezone(timezone(timedelta(hours=2)))) == "auto-20261122T1915Z"
    for manual in ["auto-20261322T1915Z", "auto-20261122T1915", "Auto-20261122T1915Z", "nightly"]:
        assert parse_scheduled_name(manual) is None
        assert snapshot_kind(manual) == "manual"
    assert snapshot_kind("auto-20261122T1915Z") == "scheduled"


@given(st.datetimes(timezones=st.just(UTC)))
def test_any_scheduled_name_parses_back_to_its_minute(when: datetime) -> None:
    assert parse_scheduled_name(scheduled_name(when)) == when.replace(second=0, microsecond=0)


# --- jitter -------------------------------------------------------------------------------------


def test_jitter_is_stable_across_processes() -> None:
    # Pinned: a salted hash() would pass a same-process check and move every restart.
    assert jitter_for("alice/web") == timedelta(minutes=7, seconds=30)
    assert jitter_for("alice/web") == jitter_for("alice/web")


def test_jitter_stays_in_range_and_spreads_envs_out() -> None:
    jitters = [jitter_for(f"user{i}/env") for i in range(100)]
    assert all(timedelta(0) <= j < SLOT and j.microseconds == 0 for j in jitters)
    assert len({j.seconds // 60 for j in jitters}) >= 13
    assert len(set(jitters)) >= 90
    hourly = [jitter_for(f"user{i}/env", timedelta(hours=1)) for i in range(100)]
    assert all(timedelta(0) <= j < timedelta(hours=1) for j in hourly)
    assert len({j.seconds // 60 for j in hourly}) >= 40


# --- validation ---------------------------------------------------------------------------------


def test_policy_defaults_and_validation() -> None:
    assert DEFAULTS.counts() == (
        ("quarter-hourly", 4),
        ("hourly", 24),
        ("daily", 14),
        ("weekly", 0),
        ("monthly", 3),
    )
    with pytest.raises(Invalid, match="hourly snapshot count is -1"):
        RetentionPolicy(hourly=-1)
    with pytest.raises(Invalid, match="whole number"):
        RetentionPolicy(daily=True)
    with pytest.raises(Invalid, match="whole number"):
        RetentionPolicy(monthly=1.5)  # type: ignore[arg-type]


def test_bad_inputs_are_refused() -> None:
    now = at("2026-06-01T12:00:00")
    with pytest.raises(Invalid, match="timezone"):
        Snapshot("x", datetime(2026, 6, 1), "manual")
    with pytest.raises(Invalid, match="kind"):
        Snapshot("x", now, "nightly")  # type: ignore[arg-type]
    with pytest.raises(Invalid, match="naming convention"):
        Snapshot("nightly", now, "scheduled")
    with pytest.raises(Invalid, match="timezone"):
        plan_snapshots(datetime(2026, 6, 1), [], DEFAULTS, jitter=timedelta(0))
    with pytest.raises(Invalid, match="jitter"):
        plan_snapshots(now, [], DEFAULTS, jitter=SLOT)
    with pytest.raises(Invalid, match="jitter"):
        plan_snapshots(now, [], DEFAULTS, jitter=-timedelta(seconds=1))
    twice = [Snapshot("x", now, "manual"), Snapshot("x", now, "manual")]
    with pytest.raises(Invalid, match="listed twice"):
        plan_snapshots(now, twice, DEFAULTS, jitter=timedelta(0))
    with pytest.raises(Invalid, match="period"):
        jitter_for("alice/web", timedelta(0))
