"""Brute force on the host's real sshd (port 22) from a network namespace, against the daemon.

The attacker is a namespace this test makes and the host routes to (its address is one of the
host's networks, outside the bridge and loopback). Repeated bad sign-ins get its address banned
(its connections to sshd no longer open) while a good key from loopback still signs in and the
namespace's other address still connects (positive controls); `cloche host bans --lift` opens
it again. The config is only read: its bans.max_failures says how many failures it takes.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cloche.model.config import load_config_text
from tests.integration.cloche_cli import cloche, cloche_json, cloche_ok
from tests.integration.test_firewall import Namespace, namespace
from tests.integration.test_ssh_access import Person, address_of, keypair, person

SSH_PORT = 22
CONFIG = Path(os.environ.get("CLOCHE_CONFIG", "/etc/cloche/config.yaml"))

# Opens a TCP connection from argv[1] (a source address) to argv[2]:argv[3]; exits 1 after 3 s.
CONNECT_FROM = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection((sys.argv[2], int(sys.argv[3])), 3, (sys.argv[1], 0)).close()\n"
    "except OSError:\n"
    "    sys.exit(1)\n"
)


@pytest.fixture(scope="module", autouse=True)
def daemon() -> None:
    """The host is set up (firewall loaded, sshd followed) and the daemon runs this code."""
    cloche_ok("host", "init")


def max_failures() -> int:
    """How many failed connections ban an address on this host."""
    text = CONFIG.read_text() if CONFIG.exists() else ""
    return load_config_text(text, str(CONFIG)).bans.max_failures


def connects_from(netns: Namespace, source: str, port: int = SSH_PORT) -> bool:
    """True when a TCP connection from source inside netns to the host's side opens."""
    argv = ["ip", "netns", "exec", netns.name, "python3", "-c", CONNECT_FROM]
    result = subprocess.run(
        [*argv, source, netns.outer, str(port)], capture_output=True, timeout=30, check=False
    )
    return result.returncode == 0


def bad_sign_in(netns: Namespace, key: Path, user: str) -> subprocess.CompletedProcess[str]:
    """One ssh connection from the namespace to the host's sshd that cannot sign in."""
    return subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            netns.name,
            "ssh",
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=5",
            "-i",
            str(key),
            "-p",
            str(SSH_PORT),
            "-l",
            user,
            netns.outer,
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def banned() -> list[str]:
    """The addresses banned now, as the CLI lists them."""
    return [str(ban["address"]) for ban in cloche_json("host", "bans")]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll condition until it holds; fail naming what did not happen."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def audited(action: str, target: str) -> list[dict[str, object]]:
    """Recent audit events of action on target."""
    lines = cloche_ok("audit", "tail", "-n", "500", "--json").splitlines()
    events = [json.loads(line) for line in lines if line.strip()]
    return [e for e in events if e["action"] == action and e["target"] == target]


def signs_in(someone: Person) -> bool:
    """True when someone's good key signs in to the host's sshd and forwards to their env."""
    forwarded = someone.ssh("-W", f"{address_of(someone, 'web')}:22", f"cloche-jump-{someone.name}")
    return forwarded.stdout.startswith("SSH-2.0")


@pytest.fixture(scope="module")
def good_user(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Person]:
    """A cloche user with a key and an environment, whose ssh config names the host's port 22."""
    with contextlib.contextmanager(person)(tmp_path_factory.mktemp("bans"), SSH_PORT, "web") as p:
        yield p


def test_repeated_bad_sign_ins_ban_the_address_until_lifted(
    good_user: Person, tmp_path: Path
) -> None:
    stranger = keypair(tmp_path, "stranger")
    invalid_user = f"nosuch{secrets.token_hex(3)}"
    with namespace() as netns:
        try:
            # Positive controls first: the namespace reaches sshd, the good key signs in.
            assert connects_from(netns, netns.inner)
            assert signs_in(good_user)
            assert netns.inner not in banned()

            # A hostile user name that names another address: it is never the one banned.
            bad_sign_in(netns, stranger, f"x from 6.6.6.6 port 1 {invalid_user}")
            for _ in range(max_failures()):
                refused = bad_sign_in(netns, stranger, invalid_user)
                assert refused.returncode != 0
            wait_for(lambda: netns.inner in banned(), f"a ban of {netns.inner}")
            assert "6.6.6.6" not in banned()

            # The ban holds: the namespace's address no longer reaches sshd; loopback's good key
            # and the namespace's other address (not banned) still do.
            assert not connects_from(netns, netns.inner)
            assert connects_from(netns, netns.internet)
            assert signs_in(good_user)
            bans_made = audited("banned address", netns.inner)
            assert bans_made, f"no 'banned address' event for {netns.inner}"
            details = bans_made[-1]["details"]
            assert bans_made[-1]["actor"] == "cloche-bans"
            assert isinstance(details, dict) and details["failures"] >= max_failures()

            # Lifting it opens sshd to the address again, and is audited with its actor.
            lifted = cloche("host", "bans", "--lift", netns.inner)
            assert lifted.returncode == 0, lifted.stderr
            assert netns.inner not in banned()
            wait_for(lambda: connects_from(netns, netns.inner), "the lifted address to connect")
            assert audited("lifted ban", netns.inner)
            # Its failures went with the ban: one more bad sign-in does not ban it again.
            bad_sign_in(netns, stranger, invalid_user)
            time.sleep(3)
            assert netns.inner not in banned()
        finally:
            if netns.inner in banned():
                cloche("host", "bans", "--lift", netns.inner)


def test_lifting_what_is_not_banned_or_not_an_address_fails_in_one_sentence() -> None:
    missing = cloche("host", "bans", "--lift", "192.0.2.254")
    assert missing.returncode != 0
    assert "is not banned" in missing.stderr and missing.stderr.count("\n") == 1
    bad = cloche("host", "bans", "--lift", "web\nProxyCommand x")
    assert bad.returncode != 0
    assert "is not an IP address" in bad.stderr and bad.stderr.count("\n") == 1
