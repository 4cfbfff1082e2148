"""Who calls the real daemon's socket: root is an admin, a mapped host account acts as its cloche
user only, an unmapped account is refused, and no header changes who the audit log names."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from cloche.model.paths import DAEMON_SOCKET
from tests.conftest import unique_suffix
from tests.integration.cloche_cli import KEYS, cloche, cloche_ok


@pytest.fixture(scope="module", autouse=True)
def daemon() -> None:
    """The host is set up and the daemon runs the code under test."""
    cloche_ok("host", "init")


@dataclass
class Caller:
    """A temporary host account and the cloche user it may be mapped to."""

    account: str
    user: str

    def get(self, path: str, *headers: str) -> tuple[int, object]:
        """GET path over the daemon's socket as this host account: (status, JSON body)."""
        argv = ["runuser", "-u", self.account, "--", "curl", "-sS", "--unix-socket"]
        argv += [DAEMON_SOCKET, "-o", "-", "-w", "\n%{http_code}"]
        for header in headers:
            argv += ["-H", header]
        result = subprocess.run(
            [*argv, f"http://cloche{path}"], capture_output=True, text=True, timeout=30, check=False
        )
        assert result.returncode == 0, result.stderr
        body, _, status = result.stdout.rpartition("\n")
        return int(status), json.loads(body) if body else None


def add_account(name: str) -> None:
    """A system account with no login and no home."""
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def callers() -> Iterator[tuple[Caller, Caller]]:
    """Two cloche users (one mapped to a host account) and an unmapped host account."""
    suffix = unique_suffix()
    mapped = Caller(account=f"cid{suffix}", user=f"i{suffix}")
    stranger = Caller(account=f"cix{suffix}", user=f"j{suffix}")
    try:
        for caller in (mapped, stranger):
            add_account(caller.account)
            cloche_ok("user", "add", caller.user, "--ssh-key", str(KEYS / "ed25519.pub"))
        cloche_ok("user", "set", mapped.user, "--host-account", mapped.account)
        yield mapped, stranger
    finally:
        for caller in (mapped, stranger):
            cloche("user", "rm", caller.user, "--purge", "--yes")
            subprocess.run(["userdel", caller.account], capture_output=True, check=False)


def test_root_on_the_socket_is_an_admin(callers: tuple[Caller, Caller]) -> None:
    mapped, stranger = callers
    listed = {user["name"] for user in json.loads(cloche_ok("user", "list", "--json"))}
    assert {mapped.user, stranger.user} <= listed


def test_an_unmapped_host_account_is_refused(callers: tuple[Caller, Caller]) -> None:
    _, stranger = callers
    status, body = stranger.get("/v1/environments")
    assert status == 401
    assert isinstance(body, dict)
    assert f"--host-account {stranger.account}" in str(body["message"])


def test_a_mapped_account_acts_as_its_user_and_no_further(callers: tuple[Caller, Caller]) -> None:
    mapped, stranger = callers
    # Positive control: its own user is there for it.
    assert mapped.get(f"/v1/users/{mapped.user}")[0] == 200
    assert mapped.get("/v1/environments")[0] == 200
    # Another tenant is "not found", the host's user list is for admins only.
    assert mapped.get(f"/v1/users/{stranger.user}")[0] == 404
    assert mapped.get("/v1/users")[0] == 403
    assert mapped.get("/v1/audit")[0] == 403


def test_a_header_does_not_make_a_member_an_admin(callers: tuple[Caller, Caller]) -> None:
    mapped, _ = callers
    status, _ = mapped.get("/v1/users", "X-Cloche-Actor: root", "X-Test-Admin: root")
    assert status == 403


def test_unmapping_the_account_refuses_it_again(callers: tuple[Caller, Caller]) -> None:
    mapped, _ = callers
    cloche_ok("user", "set", mapped.user, "--no-host-account")
    try:
        assert mapped.get(f"/v1/users/{mapped.user}")[0] == 401
    finally:
        cloche_ok("user", "set", mapped.user, "--host-account", mapped.account)
    assert mapped.get(f"/v1/users/{mapped.user}")[0] == 200


def test_a_token_acts_as_its_user_within_its_scopes_until_revoked(
    callers: tuple[Caller, Caller],
) -> None:
    mapped, stranger = callers
    made = json.loads(
        cloche_ok("token", "create", "--user", mapped.user, "--scope", "read", "--json")
    )
    secret, token_id = made["secret"], made["token"]["id"]
    bearer = f"Authorization: Bearer {secret}"
    # From an account the daemon would refuse, the token is the credential: its user, read only.
    assert stranger.get(f"/v1/users/{mapped.user}", bearer)[0] == 200
    assert stranger.get(f"/v1/users/{stranger.user}", bearer)[0] == 404
    assert stranger.get("/v1/users", bearer)[0] == 403
    listed = json.loads(cloche_ok("token", "list", "--user", mapped.user, "--json"))
    assert [token["id"] for token in listed] == [token_id]
    assert listed[0]["last_used"] is not None
    cloche_ok("token", "revoke", token_id)
    status, body = stranger.get(f"/v1/users/{mapped.user}", bearer)
    assert status == 401
    assert isinstance(body, dict) and "revoked" in str(body["message"])
