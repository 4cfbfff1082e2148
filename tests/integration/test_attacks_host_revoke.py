"""Revocation attacks on the real daemon, a real sshd (cloche's production drop-in) and real ssh.

sshd fixes a connection's permitopen list when it authenticates, so a client that holds a
connection open (a ControlMaster, a tunnel) keeps what it had unless cloche ends the session.
Each probe has a positive control: a kept key, another tenant's master, a still-listed
destination keep working, so a probe cannot pass because ssh is broken.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cloche_cli import cloche, cloche_json, cloche_ok
from tests.integration.conftest import free_port
from tests.integration.test_ssh_access import (
    Person,
    address_of,
    keypair,
    person,
    test_sshd,  # noqa: F401 - the fixture: the host's sshd binary on a loopback test port
)

# Within seconds: the daemon ends the sessions while it answers the key or environment change.
ENDED_WITHIN_SECONDS = 15


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory, test_sshd: int) -> Iterator[Person]:  # noqa: F811
    """A tenant with environment 'web' (room for one more)."""
    yield from person(tmp_path_factory.mktemp("tenant"), test_sshd, "web")


@pytest.fixture(scope="module")
def neighbour(tmp_path_factory: pytest.TempPathFactory, test_sshd: int) -> Iterator[Person]:  # noqa: F811
    """Another tenant with environment 'db': their sessions must never end with the tenant's."""
    yield from person(tmp_path_factory.mktemp("neighbour"), test_sshd, "db")


@pytest.fixture
def sockets() -> Iterator[Path]:
    """A short directory for control sockets (a unix socket path is limited to ~100 bytes)."""
    directory = Path(tempfile.mkdtemp(prefix="cm-", dir="/tmp"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _jump(who: Person) -> str:
    return f"cloche-jump-{who.name}"


def _ssh_argv(who: Person, *args: str) -> list[str]:
    return ["ssh", "-F", str(who.config), "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", *args]


class Master:
    """A held ControlMaster connection to a tenant's jump account (ssh -M -S socket -N)."""

    def __init__(self, who: Person, socket_path: Path) -> None:
        self.who, self.socket_path = who, socket_path
        self.process = subprocess.Popen(
            _ssh_argv(who, "-M", "-S", str(socket_path), "-N", _jump(who)),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while not self.check():
            assert self.process.poll() is None, (
                self.process.stderr.read() if self.process.stderr else ""
            )
            assert time.monotonic() < deadline, "the ControlMaster never came up"
            time.sleep(0.2)

    def control(self, *args: str) -> subprocess.CompletedProcess[str]:
        """ssh -S socket -O ... against the master."""
        return subprocess.run(
            _ssh_argv(self.who, "-S", str(self.socket_path), *args, _jump(self.who)),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def check(self) -> bool:
        """Whether the master still answers on its socket."""
        return self.socket_path.exists() and self.control("-O", "check").returncode == 0

    def banner_through(self, destination: str) -> str:
        """What a new session through the master (ssh -W destination) reads first."""
        return subprocess.run(
            _ssh_argv(self.who, "-S", str(self.socket_path), "-W", destination, _jump(self.who)),
            input="",
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout

    def forward_banner(self, destination: str) -> str:
        """Add an -L forward through the master to destination; what it answers ('' if none)."""
        local = free_port()
        added = self.control("-O", "forward", "-L", f"127.0.0.1:{local}:{destination}")
        if added.returncode != 0:
            return ""
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", local), timeout=10) as connection,
        ):
            connection.settimeout(10)
            return connection.recv(64).decode(errors="replace")
        return ""

    def close(self) -> None:
        """Exit the master whatever state it is in."""
        self.control("-O", "exit")
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(timeout=10)


def _fingerprint_of(who: Person, private_key: Path) -> str:
    line = Path(f"{private_key}.pub").read_text().split()[1]
    shown = cloche_json("user", "show", who.name)["ssh_keys"]
    return str(next(key["fingerprint"] for key in shown if line in key["public_key"]))


def _ended(master: Master) -> bool:
    try:
        master.process.wait(timeout=ENDED_WITHIN_SECONDS)
    except subprocess.TimeoutExpired:
        return False
    return not master.check()


def test_a_held_master_of_a_removed_key_can_open_no_forward(
    tenant: Person, neighbour: Person, sockets: Path, tmp_path: Path
) -> None:
    second = keypair(tmp_path, "second")
    cloche_ok("user", "key", "add", tenant.name, f"{second}.pub")
    web = f"{address_of(tenant, 'web')}:22"
    revoked = Master(tenant.with_key(second, tmp_path), sockets / "revoked")
    other = Master(neighbour, sockets / "neighbour")
    try:
        # Positive controls before the removal: the master forwards, and opens sessions.
        assert revoked.forward_banner(web).startswith("SSH-2.0"), "the master never forwarded"
        assert revoked.banner_through(web).startswith("SSH-2.0")

        removed = cloche("user", "key", "rm", tenant.name, _fingerprint_of(tenant, second))
        assert removed.returncode == 0, removed.stderr

        assert _ended(revoked), "the removed key's master outlived the removal"
        assert revoked.forward_banner(web) == ""
        assert revoked.banner_through(web) == ""
        # The kept key still works, on a new connection; the neighbour's master never noticed.
        kept = tenant.ssh("-W", web, _jump(tenant), timeout=30)
        assert kept.stdout.startswith("SSH-2.0"), kept.stderr
        assert other.check()
        assert other.banner_through(f"{address_of(neighbour, 'db')}:22").startswith("SSH-2.0")
        events = cloche_ok("audit", "tail", "-n", "50", "--json")
        assert "ended jump sessions of user" in events and tenant.name in events
    finally:
        revoked.close()
        other.close()


def test_a_held_master_loses_a_removed_environments_address(tenant: Person, sockets: Path) -> None:
    cloche_ok("create", f"{tenant.name}/spare")
    spare = f"{address_of(tenant, 'spare')}:22"
    web = f"{address_of(tenant, 'web')}:22"
    master = Master(tenant, sockets / "held")
    try:
        assert master.banner_through(spare).startswith("SSH-2.0")  # positive control

        cloche_ok("rm", f"{tenant.name}/spare", "--yes")

        # The address is free for the next environment, of any tenant: the master is gone.
        assert _ended(master), "a master kept the removed environment's address"
        assert master.banner_through(spare) == ""
        fresh = Master(tenant, sockets / "fresh")
        try:
            assert fresh.banner_through(web).startswith("SSH-2.0")  # positive control
            assert not fresh.banner_through(spare).startswith("SSH-2.0")
        finally:
            fresh.close()
    finally:
        master.close()
        cloche("rm", f"{tenant.name}/spare", "--yes")


def test_a_stopped_environment_gets_the_current_keys_when_started(
    tenant: Person, tmp_path: Path
) -> None:
    late, dropped = keypair(tmp_path, "late"), keypair(tmp_path, "dropped")
    cloche_ok("user", "key", "add", tenant.name, f"{dropped}.pub")
    with_dropped = tenant.with_key(dropped, tmp_path)
    assert with_dropped.ssh("web", "true").returncode == 0  # positive control
    cloche_ok("stop", f"{tenant.name}/web")
    try:
        added = cloche("user", "key", "add", tenant.name, f"{late}.pub")
        # Stopped is no failure: the change is recorded and the environment waits for it.
        assert added.returncode == 0, added.stderr
        assert f"{tenant.name}/web is stopped" in added.stdout
        cloche_ok("user", "key", "rm", tenant.name, _fingerprint_of(tenant, dropped))
    finally:
        cloche_ok("start", f"{tenant.name}/web")

    result = tenant.with_key(late, tmp_path).ssh("web", "hostname")
    assert (result.returncode, result.stdout.strip()) == (0, "web"), result.stderr
    inside = cloche_ok("exec", f"{tenant.name}/web", "--", "cat", ".ssh/authorized_keys")
    assert late.with_suffix(".pub").read_text().split()[1] in inside
    assert dropped.with_suffix(".pub").read_text().split()[1] not in inside
    assert tenant.ssh("web", "true").returncode == 0  # the first key, kept all along
