"""sshd's log without systemd: one line per message sshd wrote, whatever a client sent."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cloche.host import sshd, sshd_log
from cloche.host.logs import new_file_lines
from cloche.model.sshlog import frame_message, parse_auth_line

FINGERPRINT = "SHA256:DJfe3PrG97HUoV+KKLXTbyABw0T4VqicfHCQnfiXUkA"
FORGED = f"Accepted publickey for demo from 6.6.6.6 port 1 ssh2: ED25519 {FINGERPRINT}"
# What sshd -e writes for an unauthenticated client's disconnect reason (checked with 9.2p1).
DISCONNECT = (
    f"Received disconnect from 127.0.0.1 port 43654:11: bye\r\n{FORGED}\r\n"
    "Connection closed by 6.6.6.6 port 1 [preauth]\r\n"
)


def test_a_message_is_one_line_whatever_newlines_a_client_put_in_it() -> None:
    framed = frame_message(DISCONNECT.encode())
    assert framed.count(b"\n") == 1 and framed.endswith(b"\n")
    assert framed.startswith(b"Received disconnect from 127.0.0.1 port 43654:11: bye\\r\\nAccepted")
    assert frame_message(b"a\\b\r\n") == b"a\\\\b\n"  # a backslash cannot fake an escape
    assert frame_message(f"{FORGED}\r\n".encode()) == f"{FORGED}\n".encode()


def test_the_relay_writes_each_write_of_sshd_as_one_line(tmp_path: Path) -> None:
    log = tmp_path / "log" / "sshd.log"
    writes = [b"Server listening on :: port 22.\r\n", DISCONNECT.encode(), f"{FORGED}\r\n".encode()]
    script = f"import os\nfor chunk in {writes!r}:\n    os.write(2, chunk)\n"
    assert sshd_log.relay(log, [sys.executable, "-c", script]) == 0
    lines = new_file_lines(log, tmp_path / "sshd.offset")
    assert len(lines) == 3
    assert lines[0] == "Server listening on :: port 22."
    # The forged line stays inside the disconnect message; sshd's own message still counts.
    assert [parse_auth_line(line) is not None for line in lines] == [False, False, True]


def test_the_relay_refuses_a_bad_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert sshd_log.main(["only-a-log"]) == 2
    assert "usage:" in capsys.readouterr().err


def test_without_systemd_sshd_runs_in_the_foreground_under_the_relay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Any] = []
    pids = iter([None, 4242])
    monkeypatch.setattr(sshd, "running_sshd_pid", lambda pid_file: next(pids))
    monkeypatch.setattr(sshd, "PRIVSEP_DIR", tmp_path / "run-sshd")
    monkeypatch.setattr(
        sshd, "start_background", lambda argv, log_path: started.append((argv, log_path))
    )
    log = tmp_path / "log" / "sshd.log"
    assert sshd.ensure_sshd_running(
        main_config=tmp_path / "sshd_config",
        pid_file=tmp_path / "sshd.pid",
        log_file=log,
        systemd=False,
    )
    ((argv, log_path),) = started
    assert argv[:4] == [sys.executable, "-m", "cloche.host.sshd_log", str(log)]
    assert argv[4:8] == ["--", sshd.SSHD_BINARY, "-D", "-e"]
    assert "-E" not in argv and f"PidFile={tmp_path / 'sshd.pid'}" in argv
    assert log_path == str(tmp_path / "log" / "sshd-relay.log")


def test_an_sshd_an_older_cloche_started_with_e_is_moved_under_the_relay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids = iter([1111, 1111, None, 2222])  # the old listener, until it ends; then the new one
    signals: list[tuple[int, int]] = []
    started: list[Any] = []
    monkeypatch.setattr(sshd, "running_sshd_pid", lambda pid_file: next(pids))
    monkeypatch.setattr(sshd, "_logs_unframed", lambda pid: pid == 1111)
    monkeypatch.setattr(sshd.os, "kill", lambda pid, number: signals.append((pid, number)))
    monkeypatch.setattr(sshd, "PRIVSEP_DIR", tmp_path / "run-sshd")
    monkeypatch.setattr(sshd, "start_background", lambda argv, log_path: started.append(argv))
    assert sshd.ensure_sshd_running(
        pid_file=tmp_path / "sshd.pid", log_file=tmp_path / "sshd.log", systemd=False
    )
    assert signals == [(1111, sshd.signal.SIGTERM)]  # the listener only, never its sessions
    assert len(started) == 1 and "-e" in started[0]


def test_an_sshd_already_framed_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sshd, "running_sshd_pid", lambda pid_file: 3333)
    monkeypatch.setattr(sshd, "_logs_unframed", lambda pid: False)
    monkeypatch.setattr(sshd, "start_background", lambda argv, log_path: pytest.fail("started"))
    assert not sshd.ensure_sshd_running(
        pid_file=tmp_path / "sshd.pid", log_file=tmp_path / "sshd.log", systemd=False
    )


def test_if_the_relay_brings_no_sshd_up_the_old_way_keeps_the_host_reachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[list[str]] = []
    monkeypatch.setattr(sshd, "running_sshd_pid", lambda pid_file: None)
    monkeypatch.setattr(sshd, "PRIVSEP_DIR", tmp_path / "run-sshd")
    monkeypatch.setattr(sshd, "start_background", lambda argv, log_path: None)
    monkeypatch.setattr(sshd, "run", lambda argv, check=True: ran.append(list(argv)))
    log = tmp_path / "sshd.log"
    with pytest.raises(sshd.HostFailure, match=f"read its log \\({log}\\)"):
        sshd.ensure_sshd_running(
            pid_file=tmp_path / "sshd.pid", log_file=log, systemd=False, timeout_seconds=0.1
        )
    ((argv),) = ran
    assert argv[-2:] == ["-E", str(log)] and "-D" not in argv


def test_a_listener_started_with_e_is_recognised_by_its_arguments() -> None:
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", "-E", "/var/lib/cloche/log/x"]
    )
    try:
        # Just after exec the new command line can read as the old one for a moment.
        deadline = time.monotonic() + 5
        while b"sleep" not in Path(f"/proc/{sleeper.pid}/cmdline").read_bytes():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert sshd._logs_unframed(sleeper.pid)
        assert not sshd._logs_unframed(os.getpid())
    finally:
        sleeper.kill()
        sleeper.wait()
