"""The host sshd as a jump host, against a real sshd this test starts on 127.0.0.1.

Each test runs its own sshd (own main config including a drop-in directory in tmp_path, own host
key, pid file and log) and its own jump account and group, so the machine's /etc/ssh and its sshd
are never touched. Key files live under a root-owned 0755 directory in /run because sshd reads
them as the jump account and refuses them under a group- or world-writable directory (/tmp).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

import pytest

from cloche.host.sshd import (
    apply_sshd_dropin,
    ensure_jump_account,
    ensure_sshd_running,
    reload_sshd,
    remove_authorized_keys,
    remove_jump_account,
    running_sshd_pid,
    write_authorized_keys,
)
from cloche.model.errors import Conflict, HostFailure
from cloche.model.names import RESERVED_USERS
from cloche.render.sshd import (
    SshdSettings,
    render_authorized_keys,
    render_emergency_keys,
    render_sshd_dropin,
)
from tests.integration.conftest import free_port

pytestmark = pytest.mark.skipif(
    not Path("/usr/sbin/sshd").exists() or shutil.which("ssh") is None,
    reason="needs openssh-server and openssh-client",
)

# Debian 12's /etc/ssh/sshd_config (its non-comment lines), so the test sshd behaves like the
# host's: drop-ins first, UsePAM yes, X11Forwarding yes for everyone else.
DEBIAN_MAIN_CONFIG = """\
Include {dropin_dir}/*.conf
KbdInteractiveAuthentication no
UsePAM yes
X11Forwarding yes
PrintMotd no
AcceptEnv LANG LC_*
Subsystem\tsftp\t/usr/lib/openssh/sftp-server
HostKey {host_key}
PidFile {pid_file}
"""


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


class EchoServer(socketserver.ThreadingTCPServer):
    """A TCP echo server on 127.0.0.1:<free port>, served from a thread."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.port: int = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll condition until it holds; fail naming what did not happen."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@dataclass(frozen=True)
class JumpHost:
    """A test sshd and one jump account on it."""

    tmp: Path
    settings: SshdSettings
    main_config: Path
    dropin_path: Path
    pid_file: Path
    log_file: Path
    keys_dir: Path
    emergency_keys: Path
    user: str
    group: str
    key: Path
    allowed: EchoServer
    other: EchoServer

    @property
    def port(self) -> int:
        """The test sshd's port."""
        assert self.settings.port is not None
        return self.settings.port

    def reload(self) -> None:
        """Reload the test sshd (the production reload, pointed at its pid file)."""
        assert reload_sshd(self.pid_file, systemd=False)

    def apply(self, text: str) -> bool:
        """apply_sshd_dropin against the test sshd."""
        return apply_sshd_dropin(
            text, dropin_path=self.dropin_path, main_config=self.main_config, reload=self.reload
        )

    def good_dropin(self) -> str:
        """The drop-in under test."""
        return render_sshd_dropin(self.settings)

    def write_keys(self, *public_keys: Path) -> None:
        """Give the jump account these keys, allowed to forward only to the allowed echo server."""
        lines = [path.read_text() for path in public_keys]
        text = render_authorized_keys(lines, [f"127.0.0.1:{self.allowed.port}"])
        write_authorized_keys(self.user, text, self.keys_dir)

    def ssh_argv(self, *args: str, key: Path | None = None, user: str | None = None) -> list[str]:
        """An ssh command line for this host: its pinned host key, only the given client key."""
        return [
            "ssh",
            "-F",
            "/dev/null",
            "-p",
            str(self.port),
            "-i",
            str(key or self.key),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={self.tmp / 'known_hosts'}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ConnectTimeout=10",
            *args,
            f"{user or self.user}@127.0.0.1",
        ]

    def ssh(
        self,
        *args: str,
        key: Path | None = None,
        user: str | None = None,
        stdin: str = "",
        command: tuple[str, ...] = (),
    ) -> subprocess.CompletedProcess[str]:
        """Run ssh to completion."""
        return subprocess.run(
            [*self.ssh_argv(*args, key=key, user=user), *command],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def stdio_forward(self, port: int, key: Path | None = None) -> subprocess.CompletedProcess[str]:
        """ssh -W 127.0.0.1:port (what ssh -J does), sending one line."""
        return self.ssh("-W", f"127.0.0.1:{port}", key=key, stdin="ping\n")

    def log(self) -> str:
        """What the test sshd has logged so far."""
        return self.log_file.read_text() if self.log_file.exists() else ""

    def wait_for_log(self, pattern: str) -> re.Match[str]:
        """The first log line matching pattern, waiting for sshd to write it."""
        found: list[re.Match[str]] = []

        def seen() -> bool:
            found[:] = [m for m in [re.search(pattern, self.log(), re.MULTILINE)] if m]
            return bool(found)

        wait_for(seen, f"sshd to log {pattern!r}")
        return found[0]


def make_key(directory: Path, name: str) -> Path:
    """A fresh ed25519 client key; return its .pub path (the private key is next to it)."""
    path = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@test", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.with_suffix(".pub")


def fingerprint(public_key: Path) -> str:
    """The SHA256 fingerprint sshd logs for a key."""
    output = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(public_key)], check=True, capture_output=True, text=True
    ).stdout
    return output.split()[1]


def _stop_sshd(pids: set[int], pid_file: Path) -> None:
    current = running_sshd_pid(pid_file)
    for pid in pids | ({current} if current else set()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for pid in pids:
        with contextlib.suppress(TimeoutError, AssertionError):
            wait_for(lambda pid=pid: not Path(f"/proc/{pid}").exists(), f"sshd {pid} to stop")


def _delete_account(user: str) -> None:
    # Session processes of the account end when their clients do; userdel waits for them.
    deadline = time.monotonic() + 15
    while True:
        try:
            pwd.getpwnam(user)
        except KeyError:
            return
        result = subprocess.run(["userdel", "-r", user], capture_output=True, check=False)
        if result.returncode in (0, 12) or time.monotonic() > deadline:  # 12: no home to remove
            return
        time.sleep(0.2)


def _delete_group(group: str) -> None:
    with contextlib.suppress(KeyError):
        grp.getgrnam(group)
        subprocess.run(["groupdel", group], capture_output=True, check=False)


@pytest.fixture
def jump_host(tmp_path: Path) -> Iterator[JumpHost]:
    """A test sshd whose drop-in lets the jump account forward nowhere yet, and the account."""
    suffix = uuid.uuid4().hex[:8]
    user, group = f"tj{suffix}", f"tg{suffix}"
    with contextlib.ExitStack() as cleanup:
        run_dir = Path(tempfile.mkdtemp(prefix="cloche-test-sshd-", dir="/run"))
        cleanup.callback(shutil.rmtree, run_dir, ignore_errors=True)
        run_dir.chmod(0o755)
        allowed, other = EchoServer(), EchoServer()
        for server in (allowed, other):
            cleanup.callback(server.server_close)
            cleanup.callback(server.shutdown)

        host_key = tmp_path / "ssh_host_ed25519_key"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True
        )
        dropin_dir = tmp_path / "sshd_config.d"
        dropin_dir.mkdir()
        main_config = tmp_path / "sshd_config"
        pid_file = tmp_path / "sshd.pid"
        main_config.write_text(
            DEBIAN_MAIN_CONFIG.format(dropin_dir=dropin_dir, host_key=host_key, pid_file=pid_file)
        )
        port = free_port()
        (tmp_path / "known_hosts").write_text(
            f"[127.0.0.1]:{port} {host_key.with_suffix('.pub').read_text()}"
        )
        settings = SshdSettings(
            group=group,
            keys_dir=PurePosixPath(run_dir / "authorized_keys"),
            emergency_keys=PurePosixPath(run_dir / "emergency_authorized_keys"),
            forward_backstop=("127.0.0.1:*",),
            port=port,
            listen_address="127.0.0.1",
        )
        host = JumpHost(
            tmp=tmp_path,
            settings=settings,
            main_config=main_config,
            dropin_path=dropin_dir / "50-cloche.conf",
            pid_file=pid_file,
            log_file=tmp_path / "sshd.log",
            keys_dir=run_dir / "authorized_keys",
            emergency_keys=run_dir / "emergency_authorized_keys",
            user=user,
            group=group,
            key=make_key(tmp_path, "client").with_suffix(""),
            allowed=allowed,
            other=other,
        )
        # Before sshd runs: the drop-in applies without a reload.
        nowhere = render_sshd_dropin(replace(settings, forward_backstop=("127.0.0.1:1",)))
        assert apply_sshd_dropin(
            nowhere, dropin_path=host.dropin_path, main_config=main_config, reload=lambda: None
        )

        started: set[int] = set()
        cleanup.callback(_stop_sshd, started, pid_file)
        assert ensure_sshd_running(
            main_config=main_config, pid_file=pid_file, log_file=host.log_file, systemd=False
        )
        pid = running_sshd_pid(pid_file)
        assert pid is not None
        started.add(pid)
        assert not ensure_sshd_running(
            main_config=main_config, pid_file=pid_file, log_file=host.log_file, systemd=False
        )

        cleanup.callback(_delete_group, group)
        cleanup.callback(_delete_account, user)
        assert ensure_jump_account(user, group)
        assert not ensure_jump_account(user, group)
        host.write_keys(host.key.with_suffix(".pub"))
        yield host


def test_a_changed_dropin_is_applied_with_a_reload(jump_host: JumpHost) -> None:
    host = jump_host
    pid = running_sshd_pid(host.pid_file)
    # The fixture's drop-in only lets the account forward to port 1.
    refused = host.stdio_forward(host.allowed.port)
    assert refused.returncode == 255
    assert "stdio forwarding failed" in refused.stderr
    reloads = host.log().count("Received SIGHUP")

    assert host.apply(host.good_dropin())
    assert host.dropin_path.read_text() == host.good_dropin()
    assert host.log().count("Received SIGHUP") == reloads + 1
    assert running_sshd_pid(host.pid_file) is not None
    if pid is not None and Path(f"/proc/{pid}").exists():
        # SIGHUP re-executes sshd in place; a still-daemonized sshd keeps its pid.
        assert running_sshd_pid(host.pid_file) == pid
    forwarded = host.stdio_forward(host.allowed.port)
    assert (forwarded.returncode, forwarded.stdout) == (0, "ping\n"), forwarded.stderr

    # The same text again: nothing written, no reload.
    assert not host.apply(host.good_dropin())
    assert host.log().count("Received SIGHUP") == reloads + 1


def test_a_jump_account_forwards_only_to_its_permitted_destinations(jump_host: JumpHost) -> None:
    host = jump_host
    host.apply(host.good_dropin())
    public_key = host.key.with_suffix(".pub")

    forwarded = host.stdio_forward(host.allowed.port)
    assert (forwarded.returncode, forwarded.stdout) == (0, "ping\n"), forwarded.stderr
    accepted = host.wait_for_log(
        rf"^Accepted publickey for {host.user} from 127\.0\.0\.1 port \d+ ssh2: ED25519 (\S+)$"
    )
    assert accepted.group(1) == fingerprint(public_key)

    # Another port on the same address is listening too, but is not in the key's permitopen.
    refused = host.stdio_forward(host.other.port)
    assert refused.returncode == 255
    assert "stdio forwarding failed" in refused.stderr
    assert refused.stdout == ""
    host.wait_for_log(
        rf"to connect to host 127\.0\.0\.1 port {host.other.port}, but the request was denied\.$"
    )

    # ssh -L: the permitted destination answers through the tunnel, the other one is cut off.
    allowed_local, other_local = free_port(), free_port()
    tunnel = subprocess.Popen(
        host.ssh_argv(
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-L",
            f"127.0.0.1:{allowed_local}:127.0.0.1:{host.allowed.port}",
            "-L",
            f"127.0.0.1:{other_local}:127.0.0.1:{host.other.port}",
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def listening() -> bool:
            assert tunnel.poll() is None, "ssh -L exited"
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", allowed_local)) == 0

        wait_for(listening, "ssh -L to listen")
        with socket.create_connection(("127.0.0.1", allowed_local), timeout=10) as connection:
            connection.sendall(b"hello")
            assert connection.recv(16) == b"hello"
        with socket.create_connection(("127.0.0.1", other_local), timeout=10) as connection:
            connection.sendall(b"hello")
            with contextlib.suppress(ConnectionResetError):
                assert connection.recv(16) == b""
    finally:
        tunnel.kill()
        tunnel.wait(timeout=10)


def test_a_jump_account_gets_no_shell_command_pty_password_or_listener(
    jump_host: JumpHost,
) -> None:
    host = jump_host
    host.apply(host.good_dropin())

    command = host.ssh(command=("echo", "ran"))
    assert command.returncode != 0
    assert "ran" not in command.stdout
    assert "This account is currently not available." in command.stdout + command.stderr

    pty = host.ssh("-tt")
    assert pty.returncode != 0
    assert "PTY allocation request failed" in pty.stderr

    password = host.ssh("-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no")
    assert password.returncode == 255
    assert "Permission denied (publickey)." in password.stderr

    remote = host.ssh(
        "-N", "-o", "ExitOnForwardFailure=yes", "-R", f"127.0.0.1:0:127.0.0.1:{host.allowed.port}"
    )
    assert remote.returncode == 255
    assert "remote port forwarding failed" in remote.stderr

    # No password at all rather than a locked one: OpenSSH refuses even keys to a locked ('!')
    # account when sshd runs with UsePAM no.
    lines = Path("/etc/shadow").read_text().splitlines()
    shadow = {line.split(":")[0]: line.split(":")[1] for line in lines}
    assert shadow[host.user] == "*"
    assert pwd.getpwnam(host.user).pw_shell == "/usr/sbin/nologin"


def _answer_through_local_forward(host: JumpHost, target: str) -> tuple[bytes, str]:
    """ssh -L to target, then one connection through it: (what came back, ssh's stderr)."""
    port = free_port()
    forward = subprocess.Popen(
        host.ssh_argv("-N", "-L", f"127.0.0.1:{port}:{target}"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def listening() -> bool:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return True
            return forward.poll() is not None

        wait_for(listening, "ssh -L to listen")
        with socket.create_connection(("127.0.0.1", port), 5) as connection:
            connection.settimeout(10)
            connection.sendall(b"ping\n")
            answer = b""
            with contextlib.suppress(OSError):
                answer = connection.recv(100)
    finally:
        forward.terminate()
        _, stderr = forward.communicate(timeout=10)
    return answer, stderr


def test_a_jump_account_gets_no_unix_socket_forward_and_no_tunnel_device(
    jump_host: JumpHost, tmp_path: Path
) -> None:
    host = jump_host
    host.apply(host.good_dropin())
    # Positive control: the same ssh -L reaches the account's permitted destination.
    # (Tried three times: once in a few runs the first channel's echo came back empty.)
    allowed = f"127.0.0.1:{host.allowed.port}"
    answers = [_answer_through_local_forward(host, allowed) for _ in range(3)]
    assert any(answer == b"ping\n" for answer, _ in answers), answers

    # Local forward to a unix socket on the host (direct-streamlocal), such as the daemon's.
    answer, stderr = _answer_through_local_forward(host, "/run/cloche/cloche.sock")
    assert answer == b""
    assert "open failed" in stderr

    # A listener on a unix socket of the host (streamlocal-forward, ssh -R PATH:...).
    listener = tmp_path / "probe.sock"
    remote = host.ssh(
        "-N", "-o", "ExitOnForwardFailure=yes", "-R", f"{listener}:127.0.0.1:{host.allowed.port}"
    )
    assert remote.returncode == 255
    assert "remote port forwarding failed" in remote.stderr
    assert not listener.exists()

    # A tun/tap device (ssh -w): refused by the server, so nothing is routed through the host.
    tunnel = host.ssh("-N", "-o", "ExitOnForwardFailure=yes", "-w", "any:any")
    assert tunnel.returncode == 255
    assert re.search(r"[Tt]unnel forwarding failed|open failed", tunnel.stderr), tunnel.stderr


def test_sshd_itself_reads_no_agent_streamlocal_or_tunnel_for_a_jump_account(
    jump_host: JumpHost,
) -> None:
    host = jump_host
    host.apply(host.good_dropin())

    def effective(user: str) -> dict[str, str]:
        # sshd's own reading of its configuration for a connection of this user (sshd -T -C).
        shown = subprocess.run(
            [
                "/usr/sbin/sshd",
                "-T",
                "-f",
                str(host.main_config),
                "-C",
                f"user={user},host=x,addr=127.0.0.1",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        return dict(line.split(" ", 1) for line in shown.splitlines() if " " in line)

    jump = effective(host.user)
    assert jump["allowagentforwarding"] == "no"
    assert jump["allowstreamlocalforwarding"] == "no"
    assert jump["permittunnel"] == "no"
    assert jump["allowtcpforwarding"] == "local"
    # Positive control: the same reading for an account outside the jump group is Debian's default.
    other = effective("root")
    assert other["allowagentforwarding"] == "yes"
    assert other["allowstreamlocalforwarding"] == "yes"


def test_a_broken_dropin_is_rolled_back_and_sshd_keeps_serving(jump_host: JumpHost) -> None:
    host = jump_host
    host.apply(host.good_dropin())
    before = host.dropin_path.read_bytes()
    pid = running_sshd_pid(host.pid_file)
    reloads = host.log().count("Received SIGHUP")

    broken = host.good_dropin().replace(
        "PermitRootLogin prohibit-password", "PermitRootLogin maybe"
    )
    with pytest.raises(HostFailure, match=r'unsupported option "maybe"') as refused:
        host.apply(broken)
    assert "the previous configuration stays" in str(refused.value)
    assert host.dropin_path.read_bytes() == before
    assert host.log().count("Received SIGHUP") == reloads
    assert running_sshd_pid(host.pid_file) == pid
    forwarded = host.stdio_forward(host.allowed.port)
    assert (forwarded.returncode, forwarded.stdout) == (0, "ping\n"), forwarded.stderr


def test_a_dropin_overridden_by_an_earlier_file_is_rolled_back(jump_host: JumpHost) -> None:
    host = jump_host
    host.apply(host.good_dropin())
    before = host.dropin_path.read_bytes()
    # sshd keeps the first value it reads, and 00-*.conf sorts before 50-cloche.conf.
    (host.dropin_path.parent / "00-admin.conf").write_text("PasswordAuthentication yes\n")
    changed = host.good_dropin().replace("MaxAuthTries 4", "MaxAuthTries 3")
    with pytest.raises(HostFailure, match="sshd uses PasswordAuthentication yes"):
        host.apply(changed)
    assert host.dropin_path.read_bytes() == before


def test_a_main_config_without_the_include_is_refused(jump_host: JumpHost) -> None:
    host = jump_host
    host.main_config.write_text(
        "\n".join(
            line for line in host.main_config.read_text().splitlines() if "Include" not in line
        )
    )
    before = host.dropin_path.read_bytes()
    with pytest.raises(HostFailure, match=r"has no 'Include .*/sshd_config\.d/\*\.conf' line"):
        host.apply(host.good_dropin())
    assert host.dropin_path.read_bytes() == before


def test_a_removed_key_stops_working_at_once(jump_host: JumpHost) -> None:
    host = jump_host
    host.apply(host.good_dropin())
    second = make_key(host.tmp, "second")
    host.write_keys(host.key.with_suffix(".pub"), second)
    assert host.stdio_forward(host.allowed.port, key=second.with_suffix("")).returncode == 0

    host.write_keys(host.key.with_suffix(".pub"))
    refused = host.stdio_forward(host.allowed.port, key=second.with_suffix(""))
    assert refused.returncode == 255
    assert "Permission denied (publickey)." in refused.stderr
    failed = host.wait_for_log(
        rf"^Failed publickey for {host.user} from 127\.0\.0\.1 port \d+ ssh2: ED25519 (\S+)$"
    )
    assert failed.group(1) == fingerprint(second)
    assert host.stdio_forward(host.allowed.port).returncode == 0

    assert remove_authorized_keys(host.user, host.keys_dir)
    assert not remove_authorized_keys(host.user, host.keys_dir)
    assert host.stdio_forward(host.allowed.port).returncode == 255


def test_the_emergency_key_lets_root_in(jump_host: JumpHost) -> None:
    host = jump_host
    host.apply(host.good_dropin())
    admin = make_key(host.tmp, "admin")
    assert host.ssh(key=admin.with_suffix(""), user="root", command=("id", "-u")).returncode == 255

    host.emergency_keys.write_text(render_emergency_keys([admin.read_text()]))
    shell = host.ssh(key=admin.with_suffix(""), user="root", command=("id", "-u"))
    assert (shell.returncode, shell.stdout) == (0, "0\n"), shell.stderr
    # The emergency file is root's only: a jump account cannot use it.
    assert host.stdio_forward(host.allowed.port, key=admin.with_suffix("")).returncode == 255


def test_removing_a_jump_account_ends_its_tunnels(jump_host: JumpHost) -> None:
    host = jump_host
    host.apply(host.good_dropin())
    local = free_port()
    # Keepalives: the client notices within seconds a server side that is gone without a FIN.
    alive = ("-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=3")
    tunnel = subprocess.Popen(
        host.ssh_argv(*alive, "-N", "-L", f"127.0.0.1:{local}:127.0.0.1:{host.allowed.port}"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def listening() -> bool:
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", local)) == 0

        wait_for(listening, "ssh -L to listen")
        remove_authorized_keys(host.user, host.keys_dir)
        assert remove_jump_account(host.user, host.group)
        assert tunnel.wait(timeout=30) != 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            tunnel.kill()
        tunnel.wait(timeout=10)
    with pytest.raises(KeyError):
        pwd.getpwnam(host.user)
    assert not remove_jump_account(host.user, host.group)


def test_an_account_outside_the_group_is_never_taken_over(jump_host: JumpHost) -> None:
    host = jump_host
    # Any existing account with a valid cloche user name, e.g. Debian's 'man'.
    foreign = next(
        entry.pw_name
        for entry in pwd.getpwall()
        if re.fullmatch(r"[a-z][a-z0-9-]{0,29}", entry.pw_name)
        and entry.pw_name not in RESERVED_USERS
        and entry.pw_name != host.user
    )
    with pytest.raises(Conflict, match="not a cloche jump account"):
        ensure_jump_account(foreign, host.group)
    assert not remove_jump_account(foreign, host.group)
    assert pwd.getpwnam(foreign)
