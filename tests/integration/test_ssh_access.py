"""SSH access through the host's real sshd (on a test port, with cloche's own drop-in) and ssh."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cloche.host.sshd import DROPIN_PATH
from tests.integration import host_services
from tests.integration.cloche_cli import cloche, cloche_json, cloche_ok
from tests.integration.conftest import free_port
from tests.integration.test_environments import make_user, remove_user


def keypair(directory: Path, name: str) -> Path:
    """A new ed25519 key pair; returns the private key's path."""
    path = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True
    )
    return path


@pytest.fixture(scope="module")
def test_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The host's sshd binary on a loopback test port, with cloche's drop-in and host keys."""
    cloche_ok("host", "init")  # writes the drop-in and the jump group
    directory = tmp_path_factory.mktemp("sshd")
    port = free_port()
    host_keys = "".join(
        f"HostKey {path}\n"
        for path in ("/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ecdsa_key")
        if Path(path).exists()
    )
    main = directory / "sshd_config"
    main.write_text(
        f"Include {DROPIN_PATH}\n"
        f"Port {port}\nListenAddress 127.0.0.1\n{host_keys}"
        f"PidFile {directory}/sshd.pid\nUsePAM yes\n"
    )
    subprocess.run(["/usr/sbin/sshd", "-t", "-f", str(main)], check=True)
    daemon = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-f", str(main), "-E", str(directory / "log")]
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield port
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(timeout=10)


@dataclass
class Person:
    """A cloche user with their own key pair and a generated ssh config."""

    name: str
    key: Path
    config: Path

    def ssh(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run the real ssh client with this person's config."""
        return subprocess.run(
            [
                "ssh",
                "-F",
                str(self.config),
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=10",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def with_key(self, key: Path, directory: Path) -> Person:
        """The same person's config, but offering another key (for both hops)."""
        config = directory / f"config-{key.name}"
        config.write_text(self.config.read_text().replace(str(self.key), str(key)))
        return Person(self.name, key, config)


def person(directory: Path, port: int, environment: str) -> Iterator[Person]:
    """A user with one environment, and the ssh config cloche generates for them."""
    key = keypair(directory, f"key-{environment}")
    name = make_user("--max-envs", "2")
    try:
        cloche_ok("user", "key", "add", name, f"{key}.pub")
        cloche_ok("create", f"{name}/{environment}")
        config = directory / f"config-{name}"
        generated = cloche_ok(
            "ssh-config",
            name,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--known-hosts",
            str(directory / f"known-{name}"),
            "--identity-file",
            str(key),
        )
        # Only what cloche wrote: the key at a non-default path reaches the jump and the
        # environment because every block names it (ssh -i would not reach the ProxyJump hop).
        config.write_text(generated)
        yield Person(name, key, config)
    finally:
        remove_user(name)


@pytest.fixture(scope="module")
def alice(tmp_path_factory: pytest.TempPathFactory, test_sshd: int) -> Iterator[Person]:
    """Person A with environment 'web'."""
    yield from person(tmp_path_factory.mktemp("alice"), test_sshd, "web")


@pytest.fixture(scope="module")
def bob(tmp_path_factory: pytest.TempPathFactory, test_sshd: int) -> Iterator[Person]:
    """Person B with environment 'db'."""
    yield from person(tmp_path_factory.mktemp("bob"), test_sshd, "db")


def address_of(person: Person, environment: str) -> str:
    """The environment's static address."""
    return str(cloche_json("info", f"{person.name}/{environment}")["address"])


def test_a_shell_command_through_the_jump_with_pinned_keys(alice: Person) -> None:
    result = alice.ssh("web", "hostname; id -un")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["web", alice.name]
    assert "Warning: Permanently added" not in result.stderr  # nothing learnt on first use


def test_scp_and_sftp_of_a_file(alice: Person, tmp_path: Path) -> None:
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(256 * 1024))
    digest = hashlib.sha256(payload.read_bytes()).hexdigest()
    scp = subprocess.run(
        ["scp", "-F", str(alice.config), "-o", "BatchMode=yes", str(payload), "web:/tmp/copied"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert scp.returncode == 0, scp.stderr
    inside = cloche_ok("exec", f"{alice.name}/web", "--", "sha256sum", "/tmp/copied").split()[0]
    assert inside == digest
    batch = tmp_path / "batch"
    back = tmp_path / "back.bin"
    batch.write_text(f"get /tmp/copied {back}\n")
    sftp = subprocess.run(
        ["sftp", "-F", str(alice.config), "-o", "BatchMode=yes", "-b", str(batch), "web"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert sftp.returncode == 0, sftp.stderr
    assert hashlib.sha256(back.read_bytes()).hexdigest() == digest


def test_local_forward_to_a_port_inside_ones_own_environment(alice: Person) -> None:
    cloche_ok(
        "exec",
        f"{alice.name}/web",
        "--",
        "sh",
        "-c",
        "mkdir -p /tmp/site && echo forwarded-page > /tmp/site/index.html && "
        "(setsid python3 -m http.server 8080 --bind 127.0.0.1 --directory /tmp/site "
        ">/dev/null 2>&1 &)",
    )
    local = free_port()
    tunnel = subprocess.Popen(
        [
            "ssh",
            "-F",
            str(alice.config),
            "-o",
            "BatchMode=yes",
            "-N",
            "-L",
            f"127.0.0.1:{local}:127.0.0.1:8080",
            "web",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        page = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "forwarded-page" not in page:
            fetched = subprocess.run(
                ["curl", "-s", "--max-time", "2", f"http://127.0.0.1:{local}/"],
                capture_output=True,
                text=True,
                check=False,
            )
            page = fetched.stdout
            time.sleep(0.3)
        assert "forwarded-page" in page
    finally:
        tunnel.terminate()
        tunnel.wait(timeout=10)


def test_the_jump_account_runs_nothing_and_forwards_only_to_ones_own_environments(
    alice: Person, bob: Person, test_sshd: int
) -> None:
    command = alice.ssh(f"cloche-jump-{alice.name}", "echo pwned")
    assert command.returncode != 0
    assert "pwned" not in command.stdout
    shell = alice.ssh("-tt", f"cloche-jump-{alice.name}")
    assert shell.returncode != 0
    forbidden = [
        f"{address_of(bob, 'db')}:22",
        f"{address_of(bob, 'db')}:80",
        f"127.0.0.1:{test_sshd}",
        "10.120.0.1:22",
        "169.254.169.254:80",
        f"{address_of(alice, 'web')}:80",
    ]
    for destination in forbidden:
        attempt = alice.ssh("-W", destination, f"cloche-jump-{alice.name}", timeout=30)
        assert attempt.returncode != 0, destination
        assert "SSH-" not in attempt.stdout, destination
    allowed = alice.ssh(
        "-W", f"{address_of(alice, 'web')}:22", f"cloche-jump-{alice.name}", timeout=30
    )
    assert allowed.stdout.startswith("SSH-2.0"), allowed.stderr


def test_no_passwords_and_no_one_elses_key(alice: Person, bob: Person, tmp_path: Path) -> None:
    password = alice.ssh(
        "-o",
        "PreferredAuthentications=password,keyboard-interactive",
        "-o",
        "PubkeyAuthentication=no",
        f"cloche-jump-{alice.name}",
    )
    assert password.returncode != 0
    assert "Permission denied" in password.stderr
    with_bobs_key = alice.with_key(bob.key, tmp_path).ssh("web", "true")
    assert with_bobs_key.returncode != 0
    assert "Permission denied" in with_bobs_key.stderr


def test_a_removed_key_stops_working_for_the_jump_and_the_environment(
    alice: Person, tmp_path: Path
) -> None:
    second = keypair(tmp_path, "second")
    added = json.loads(cloche_ok("user", "show", alice.name, "--json"))
    before = {key["fingerprint"] for key in added["ssh_keys"]}
    cloche_ok("user", "key", "add", alice.name, f"{second}.pub")
    fingerprint = next(
        key["fingerprint"]
        for key in cloche_json("user", "show", alice.name)["ssh_keys"]
        if key["fingerprint"] not in before
    )
    second_person = alice.with_key(second, tmp_path)
    assert second_person.ssh("web", "true").returncode == 0
    cloche_ok("user", "key", "rm", alice.name, fingerprint)
    refused = second_person.ssh("web", "true")
    assert refused.returncode != 0
    # Also straight at the environment's sshd key check (through the still-valid first key's
    # jump): the environment's authorized_keys no longer holds the removed key.
    keys_inside = cloche_ok("exec", f"{alice.name}/web", "--", "cat", ".ssh/authorized_keys")
    assert second.with_suffix(".pub").read_text().split()[1] not in keys_inside
    assert alice.ssh("web", "true").returncode == 0


def test_an_environment_whose_host_key_changed_is_refused(bob: Person) -> None:
    assert bob.ssh("db", "true").returncode == 0
    cloche_ok(
        "exec",
        f"{bob.name}/db",
        "--root",
        "--",
        "sh",
        "-c",
        "rm -f /etc/ssh/ssh_host_*; ssh-keygen -q -A; systemctl restart ssh",
    )
    changed = bob.ssh("db", "true")
    assert changed.returncode != 0
    assert "Host key verification failed" in changed.stderr or "CHANGED" in changed.stderr


def test_authentications_to_the_host_sshd_are_audited(alice: Person, tmp_path: Path) -> None:
    # The host's own sshd (port 22) is the one whose log the daemon follows.
    generated = cloche_ok(
        "ssh-config",
        alice.name,
        "--host",
        "127.0.0.1",
        "--port",
        "22",
        "--known-hosts",
        str(tmp_path / "known"),
        "--identity-file",
        str(alice.key),
    )
    host_config = tmp_path / "config-host"
    host_config.write_text(generated)
    host_person = Person(alice.name, alice.key, host_config)
    fingerprint = subprocess.run(
        ["ssh-keygen", "-lf", f"{alice.key}.pub"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    stranger = keypair(tmp_path, "stranger")
    assert host_person.ssh(
        "-W", f"{address_of(alice, 'web')}:22", f"cloche-jump-{alice.name}"
    ).stdout.startswith("SSH-2.0")
    host_person.with_key(stranger, tmp_path).ssh(f"cloche-jump-{alice.name}")
    deadline = time.monotonic() + 15
    seen: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        seen = [
            json.loads(line)
            for line in cloche_ok("audit", "tail", "-n", "200", "--json").splitlines()
            if f'"jump:{alice.name}"' in line
        ]
        if any(e["outcome"] == "failed" for e in seen) and any(
            e["outcome"] == "succeeded" for e in seen
        ):
            break
        time.sleep(1)
    accepted = [e for e in seen if e["outcome"] == "succeeded"]
    refused = [e for e in seen if e["outcome"] == "failed"]
    assert accepted and refused, seen
    assert fingerprint in str(accepted[-1]["details"])
    assert "127.0.0.1" in str(accepted[-1]["details"])
    assert refused[-1]["action"] == "was refused over SSH"


def test_ssh_keeps_working_while_the_daemon_is_down(alice: Person) -> None:
    host_services.stop_daemon()  # systemctl stop where systemd runs, else its pid file
    try:
        assert cloche("list").returncode != 0  # the daemon really is down
        result = alice.ssh("web", "hostname")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "web"
    finally:
        cloche_ok("host", "init")


def test_agent_forwarding_reaches_the_environment(alice: Person) -> None:
    agent = subprocess.run(["ssh-agent", "-s"], capture_output=True, text=True, check=True)
    environment = dict(os.environ)
    for line in agent.stdout.splitlines():
        if line.startswith(("SSH_AUTH_SOCK=", "SSH_AGENT_PID=")):
            key, _, value = line.partition("=")
            environment[key] = value.split(";")[0]
    try:
        subprocess.run(
            ["ssh-add", str(alice.key)], env=environment, capture_output=True, check=True
        )
        listed = subprocess.run(
            ["ssh", "-F", str(alice.config), "-o", "BatchMode=yes", "-A", "web", "ssh-add -l"],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert listed.returncode == 0, listed.stderr
        assert alice.key.name in listed.stdout  # the key's comment, seen from inside
    finally:
        subprocess.run(["ssh-agent", "-k"], env=environment, capture_output=True, check=False)


def test_bad_keys_are_refused_by_the_cli_with_one_sentence(tmp_path: Path) -> None:
    private = keypair(tmp_path, "oops")
    weak = Path(__file__).resolve().parents[1] / "unit" / "data" / "rsa1024.pub"
    malformed = tmp_path / "malformed.pub"
    malformed.write_text("ssh-ed25519 not-base64!!\n")
    cases = [
        (private, "This is a private key"),
        (weak, "1024 bits, under the minimum of 2048"),
        (malformed, "corrupt"),
    ]
    for path, message in cases:
        result = cloche("user", "add", "tbadkey", "--ssh-key", str(path))
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0], result.stderr
    assert cloche("user", "show", "tbadkey").returncode == 3  # nothing was made
