"""The ban planner: failures within a window ban an address, bans run out, some never happen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloche.model.bans import (
    Ban,
    BanPolicy,
    Failure,
    active,
    check_address,
    parse_duration,
    plan_bans,
)
from cloche.model.config import parse_config
from cloche.model.errors import Invalid

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
POLICY = BanPolicy(max_failures=3, never=("10.120.0.0/16", "198.51.100.0/24", "2001:db8:1::/48"))
ATTACKER = "203.0.113.7"


def failures(address: str, count: int, minutes_ago: float = 1) -> list[Failure]:
    return [Failure(address, NOW - timedelta(minutes=minutes_ago)) for _ in range(count)]


def ban(address: str, minutes_left: float) -> Ban:
    return Ban(address, NOW + timedelta(minutes=minutes_left), 3, NOW - timedelta(minutes=5))


def test_max_failures_within_the_window_ban_for_the_duration() -> None:
    plan = plan_bans(failures(ATTACKER, 3), [], POLICY, NOW)
    assert plan.add == (Ban(ATTACKER, NOW + timedelta(hours=1), 3, NOW),)
    assert plan.drop == ()
    assert plan.forget_before == NOW - timedelta(minutes=10)


def test_fewer_failures_or_older_ones_ban_nobody() -> None:
    assert not plan_bans(failures(ATTACKER, 2), [], POLICY, NOW).changed
    old = failures(ATTACKER, 2) + failures(ATTACKER, 5, minutes_ago=10)
    assert not plan_bans(old, [], POLICY, NOW).changed


def test_each_address_is_counted_on_its_own() -> None:
    mixed = failures(ATTACKER, 2) + failures("203.0.113.8", 2) + failures("2001:db8::9", 3)
    assert [b.address for b in plan_bans(mixed, [], POLICY, NOW).add] == ["2001:db8::9"]


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "127.8.9.10", "::1", "10.120.3.4", "198.51.100.200", "2001:db8:1::5"]
)
def test_loopback_the_bridge_and_configured_ranges_are_never_banned(address: str) -> None:
    assert not plan_bans(failures(address, 50), [], POLICY, NOW).changed


def test_a_banned_address_is_not_banned_again() -> None:
    assert not plan_bans(failures(ATTACKER, 5), [ban(ATTACKER, 30)], POLICY, NOW).changed


def test_run_out_and_newly_protected_bans_are_dropped() -> None:
    bans = [ban(ATTACKER, 0), ban("198.51.100.7", 30), ban("203.0.113.8", 30)]
    plan = plan_bans([], bans, POLICY, NOW)
    assert [b.address for b in plan.drop] == ["198.51.100.7", ATTACKER]
    assert plan.add == ()
    assert [b.address for b in active(bans, NOW)] == ["198.51.100.7", "203.0.113.8"]


def test_an_address_whose_ban_ran_out_can_be_banned_again() -> None:
    plan = plan_bans(failures(ATTACKER, 3), [ban(ATTACKER, -1)], POLICY, NOW)
    assert [b.address for b in plan.drop] == [ATTACKER]
    assert [b.address for b in plan.add] == [ATTACKER]


@pytest.mark.parametrize(
    ("text", "length"),
    [("30s", timedelta(seconds=30)), ("10m", timedelta(minutes=10)), (" 1h", timedelta(hours=1))],
)
def test_durations(text: str, length: timedelta) -> None:
    assert parse_duration(text) == length


@pytest.mark.parametrize("text", ["", "10", "0m", "1.5h", "1w", "-1h", "10 m", "9999999s"])
def test_bad_durations_are_refused_in_one_sentence(text: str) -> None:
    with pytest.raises(Invalid, match=r"is not a duration; .* 10m or 1h\)\.$"):
        parse_duration(text)


def test_addresses_are_normalised_and_non_addresses_refused() -> None:
    assert check_address("2001:DB8::0:7") == "2001:db8::7"
    assert check_address("::ffff:203.0.113.7") == ATTACKER
    with pytest.raises(Invalid, match=r"^'web\\n' is not an IP address; give one such as"):
        check_address("web\n")


def test_the_config_section_has_the_issue_s_defaults_and_checks_its_values() -> None:
    bans = parse_config({}).bans
    assert (bans.max_failures, bans.window, bans.duration, bans.never) == (10, "10m", "1h", [])
    given = parse_config({"bans": {"never": ["192.0.2.1/24", "2001:db8::/32"], "window": "1m"}})
    assert given.bans.never == ["192.0.2.0/24", "2001:db8::/32"]
    with pytest.raises(Invalid, match=r"bans\.window: '10x' is not a duration"):
        parse_config({"bans": {"window": "10x"}})
    with pytest.raises(Invalid, match=r"bans\.never\.0: 'office' is not a network"):
        parse_config({"bans": {"never": ["office"]}})
    with pytest.raises(Invalid, match=r"bans\.max_failures"):
        parse_config({"bans": {"max_failures": 0}})
