"""Bans end to end on fakes: sshd's lines from the audit loop, the firewall's sets, API, CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloche.api.app import create_app
from cloche.cli import common, remote
from cloche.cli.main import app
from cloche.client import Client
from cloche.core import bans
from cloche.core.ssh_audit import audit_new_authentications
from cloche.host.adapters import HostSshd
from cloche.model.config import parse_config
from cloche.model.errors import Invalid, NotFound
from tests.unit.callers import header_caller
from tests.unit.fakes import FakeContext, FakeFirewall, TestClient, events, fake_context

ATTACKER, OTHER = "203.0.113.7", "2001:db8::9"
CONFIG = parse_config(
    {"firewall": {"mode": "protect"}, "bans": {"max_failures": 3, "never": ["198.51.100.0/24"]}}
)
T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@dataclass
class Clock:
    """A clock the test moves."""

    at: datetime = T0

    def now(self) -> datetime:
        """The time the test set."""
        return self.at


@dataclass
class LoggingSshd(HostSshd):
    """sshd whose log holds the lines the test queues (nothing is read from the host)."""

    queued: list[str] = field(default_factory=list)

    def new_log_lines(self, state_dir: Path, log_file: Path) -> list[str]:
        """The queued lines, once."""
        lines, self.queued = self.queued, []
        return lines


@pytest.fixture
def context(tmp_path: Path) -> Iterator[FakeContext]:
    with fake_context(tmp_path, CONFIG) as context:
        context.host.clock = Clock()
        context.host.sshd = LoggingSshd()
        yield context


def read(context: FakeContext, *lines: str) -> None:
    """sshd logs lines; the audit loop runs one pass."""
    sshd = context.host.sshd
    assert isinstance(sshd, LoggingSshd)
    sshd.queued += lines
    audit_new_authentications(context)


def later(context: FakeContext, **delta: float) -> None:
    clock = context.host.clock
    assert isinstance(clock, Clock)
    clock.at += timedelta(**delta)


def table(context: FakeContext) -> str:
    firewall = context.host.firewall
    assert isinstance(firewall, FakeFirewall) and firewall.table is not None
    return firewall.table


def invalid(address: str, port: int, user: str = "admin") -> str:
    return f"Invalid user {user} from {address} port {port}"


def test_failed_connections_ban_the_address_in_the_firewall_and_the_audit(
    context: FakeContext,
) -> None:
    read(context, invalid(ATTACKER, 1), invalid(ATTACKER, 2))
    assert bans.list_bans(context) == []
    # The same connection's further lines add nothing; a third connection bans.
    read(context, f"Connection closed by invalid user admin {ATTACKER} port 2 [preauth]")
    assert bans.list_bans(context) == []
    read(context, invalid(ATTACKER, 3), invalid(OTHER, 4))
    [ban] = bans.list_bans(context)
    assert (ban.address, ban.until, ban.failures) == (ATTACKER, T0 + timedelta(hours=1), 3)
    assert f"elements = {{\n\t\t\t{ATTACKER},\n" in table(context)
    assert "\t\tip saddr @banned drop" in table(context)
    [event] = events(context, "banned address")
    assert (event.actor, event.target, event.details["failures"]) == ("cloche-bans", ATTACKER, 3)
    read(context, invalid(ATTACKER, 5))
    assert len(events(context, "banned address")) == 1


def test_a_hostile_user_name_bans_the_sender_not_the_address_it_names(
    context: FakeContext,
) -> None:
    hostile = "x from 6.6.6.6 port 1"
    read(context, *(invalid(ATTACKER, port, hostile) for port in (1, 2, 3)))
    assert [ban.address for ban in bans.list_bans(context)] == [ATTACKER]
    assert "6.6.6.6" not in table(context)


def test_an_accepted_connection_is_forgiven(context: FakeContext) -> None:
    key = "ED25519 SHA256:DJfe3PrG97HUoV+KKLXTbyABw0T4VqicfHCQnfiXUkA"
    for port in (1, 2, 3):
        read(
            context,
            f"Failed publickey for alice from {ATTACKER} port {port} ssh2: {key}",
            f"Accepted publickey for alice from {ATTACKER} port {port} ssh2: {key}",
        )
    assert bans.list_bans(context) == []


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.120.0.55", "198.51.100.9"])
def test_loopback_the_bridge_and_never_ranges_are_not_banned(
    context: FakeContext, address: str
) -> None:
    read(context, *(invalid(address, port) for port in range(1, 20)))
    assert bans.list_bans(context) == []


def test_failures_outside_the_window_do_not_add_up(context: FakeContext) -> None:
    read(context, invalid(ATTACKER, 1), invalid(ATTACKER, 2))
    later(context, minutes=11)
    read(context, invalid(ATTACKER, 3))
    assert bans.list_bans(context) == []


def test_a_ban_runs_out_and_is_lifted_in_the_firewall_and_the_audit(context: FakeContext) -> None:
    read(context, *(invalid(OTHER, port) for port in (1, 2, 3)))
    assert f"\t\t\t{OTHER}," in table(context)
    later(context, minutes=61)
    read(context)
    assert bans.list_bans(context) == []
    assert OTHER not in table(context)
    [event] = events(context, "lifted ban")
    assert (event.target, event.details["reason"]) == (OTHER, "ran out")


def test_lifting_a_ban_forgets_its_failures(context: FakeContext) -> None:
    read(context, *(invalid(ATTACKER, port) for port in (1, 2, 3)))
    lifted = bans.lift_ban(context, "carol", ATTACKER)
    assert lifted.address == ATTACKER
    assert ATTACKER not in table(context)
    [event] = events(context, "lifted ban")
    assert (event.actor, event.details["reason"]) == ("carol", "lifted by hand")
    # A fresh start: one more failure is not the third.
    read(context, invalid(ATTACKER, 4))
    assert bans.list_bans(context) == []
    with pytest.raises(NotFound, match=f"^{ATTACKER} is not banned; 'cloche host bans' lists"):
        bans.lift_ban(context, "carol", ATTACKER)
    with pytest.raises(Invalid, match=r"^'web' is not an IP address; give one such as"):
        bans.lift_ban(context, "carol", "web")


def test_the_api_lists_and_lifts_and_refuses_in_one_sentence(context: FakeContext) -> None:
    read(context, *(invalid(OTHER, port) for port in (1, 2, 3)))
    with TestClient(create_app(context, header_caller)) as client:
        [listed] = client.get("/v1/host/bans").json()
        assert listed["address"] == OTHER and listed["failures"] == 3
        assert listed["until"] == (T0 + timedelta(hours=1)).isoformat()
        headers = {"X-Test-Admin": "carol"}
        missing = client.delete(f"/v1/host/bans/{ATTACKER}", headers=headers)
        assert missing.status_code == 404 and missing.json()["error"] == "NotFound"
        for bad in ("web", "10.0.0.0%2F8", "1.2.3.4.5"):
            refused = client.delete(f"/v1/host/bans/{bad}", headers=headers)
            assert refused.status_code == 422, bad
            assert refused.json()["message"].count(".") >= 1
        assert client.delete(f"/v1/host/bans/{OTHER}", headers=headers).json() == listed
        assert client.get("/v1/host/bans").json() == []
    assert events(context, "lifted ban")[-1].actor == "carol"


@pytest.fixture
def cli(context: FakeContext, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("NO_COLOR", "1")
    common.console.cache_clear()
    common.error_console.cache_clear()
    with TestClient(create_app(context, header_caller)) as http:
        monkeypatch.setattr(remote, "client_factory", lambda: Client(http=http))
        yield CliRunner()
    common.console.cache_clear()
    common.error_console.cache_clear()


def test_the_cli_lists_lifts_and_fails_in_one_line(cli: CliRunner, context: FakeContext) -> None:
    assert cli.invoke(app, ["host", "bans"]).stdout == "no banned addresses\n"
    read(context, *(invalid(ATTACKER, port) for port in (1, 2, 3)))
    shown = cli.invoke(app, ["host", "bans"]).stdout
    assert ATTACKER in shown and "2026-12-02T13:00:00+00:00" in shown
    [listed] = json.loads(cli.invoke(app, ["host", "bans", "--json"]).stdout)
    assert sorted(listed) == ["address", "created", "failures", "until"]
    lifted = cli.invoke(app, ["host", "bans", "--lift", ATTACKER])
    assert (lifted.exit_code, lifted.stdout) == (0, f"lifted the ban of {ATTACKER}\n")
    again = cli.invoke(app, ["host", "bans", "--lift", ATTACKER])
    assert again.exit_code == NotFound.exit_code
    assert again.stderr.startswith("error: ") and again.stderr.count("\n") == 1
    bad = cli.invoke(app, ["host", "bans", "--lift", "web"])
    assert bad.exit_code == Invalid.exit_code and "is not an IP address" in bad.stderr
