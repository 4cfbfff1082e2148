"""The host's OpenSSH sshd: its cloche drop-in, jump accounts and their authorized_keys files.

A drop-in change is validate -> swap -> reload -> roll back: the new file is checked with the
real `sshd -t` against the main config that includes it, the previous file comes back when sshd
refuses it, and sshd is only ever reloaded (SIGHUP re-executes it in place and keeps open
connections), never restarted.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import pwd
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from cloche.host import jump_sessions
from cloche.host.accounts import ensure_group
from cloche.host.files import read_text_or_none, restore, write_atomically
from cloche.host.run import run, start_background
from cloche.model.errors import Conflict, HostFailure
from cloche.model.names import check_user_name

log = logging.getLogger(__name__)

JUMP_GROUP = "cloche-users"
DROPIN_PATH = Path("/etc/ssh/sshd_config.d/50-cloche.conf")
MAIN_CONFIG = Path("/etc/ssh/sshd_config")
SSHD_BINARY = "/usr/sbin/sshd"
PID_FILE = Path("/run/sshd.pid")
# sshd refuses to start without its privilege separation directory; /run is a tmpfs.
PRIVSEP_DIR = Path("/run/sshd")
KEYS_DIR = Path("/etc/cloche/ssh/authorized_keys")
NOLOGIN = "/usr/sbin/nologin"
SYSTEMD_UNIT = "ssh"
RELOAD_TIMEOUT_SECONDS = 10.0
USERDEL_IN_USE = 8

# Settings another file could set before cloche's drop-in (sshd keeps the first value it reads);
# if any of them ends up different from the drop-in's, the host is not what cloche promises.
_MUST_TAKE_EFFECT = (
    "PasswordAuthentication",
    "KbdInteractiveAuthentication",
    "PermitEmptyPasswords",
    "LogLevel",
)


def _systemd_runs(systemd: bool | None) -> bool:
    # sd_booted(): systemd creates this directory only when it is PID 1.
    return Path("/run/systemd/system").is_dir() if systemd is None else systemd


def running_sshd_pid(pid_file: Path = PID_FILE) -> int | None:
    """The pid in pid_file if it is a live sshd, else None."""
    try:
        pid = int(pid_file.read_text().strip())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None
    return pid if comm == "sshd" else None


def _check_include(main_config: Path, dropin_path: Path) -> None:
    text = read_text_or_none(main_config)
    if text is None:
        raise HostFailure(f"{main_config} does not exist; install openssh-server and try again.")
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) < 2 or words[0].lower() != "include":
            continue
        for pattern in words[1:]:
            # sshd reads relative Include patterns relative to /etc/ssh.
            absolute = PurePosixPath("/etc/ssh", pattern)
            if PurePosixPath(dropin_path).match(str(absolute)):
                return
    raise HostFailure(
        f"{main_config} has no 'Include {dropin_path.parent}/*.conf' line, so sshd would ignore "
        f"cloche's {dropin_path}; add that line at the top of {main_config} and try again."
    )


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "no output")


def _global_settings(text: str) -> dict[str, str]:
    """The settings before the first Match block, keyed in lowercase as 'sshd -T' prints them."""
    settings: dict[str, str] = {}
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split(None, 1)
        if not words:
            continue
        if words[0].lower() == "match":
            break
        if len(words) == 2:
            settings.setdefault(words[0].lower(), words[1].strip())
    return settings


def _check_effective(text: str, sshd_binary: str, main_config: Path) -> None:
    wanted = _global_settings(text)
    effective = _global_settings(run([sshd_binary, "-T", "-f", str(main_config)]).stdout)
    for name in _MUST_TAKE_EFFECT:
        want, have = wanted.get(name.lower()), effective.get(name.lower())
        if want is not None and have is not None and want.lower() != have.lower():
            raise HostFailure(
                f"sshd uses {name} {have} from a file it reads before cloche's drop-in "
                f"(the top of {main_config} or an earlier sshd_config.d file); remove that line "
                "so cloche's settings apply."
            )


def apply_sshd_dropin(
    text: str,
    *,
    dropin_path: Path = DROPIN_PATH,
    sshd_binary: str = SSHD_BINARY,
    main_config: Path = MAIN_CONFIG,
    reload: Callable[[], object] | None = None,
) -> bool:
    """Validate, swap in and reload the sshd drop-in, or roll back; return whether it changed."""
    _check_include(main_config, dropin_path)
    previous = read_text_or_none(dropin_path)
    if previous == text:
        return False
    write_atomically(dropin_path, text, mode=0o644)
    try:
        checked = run([sshd_binary, "-t", "-f", str(main_config)], check=False)
        if not checked.ok:
            reason = _first_line(checked.stderr + checked.stdout)
            raise HostFailure(
                f"sshd refused the new configuration ({reason}); the previous configuration "
                "stays and sshd keeps serving it, so correct that setting and apply again."
            )
        _check_effective(text, sshd_binary, main_config)
        (reload or reload_sshd)()
    except BaseException:
        restore(dropin_path, previous)
        raise
    log.info("applied %s and reloaded sshd", dropin_path)
    return True


def _pid_file_stamp(pid_file: Path) -> tuple[int, int] | None:
    try:
        status = pid_file.stat()
    except FileNotFoundError:
        return None
    return status.st_ino, status.st_mtime_ns


def reload_sshd(
    pid_file: Path = PID_FILE,
    *,
    systemd: bool | None = None,
    timeout_seconds: float = RELOAD_TIMEOUT_SECONDS,
) -> bool:
    """Reload (never restart) the running sshd; return False when none runs."""
    if _systemd_runs(systemd):
        if not run(["systemctl", "is-active", "--quiet", SYSTEMD_UNIT], check=False).ok:
            return False
        run(["systemctl", "reload", SYSTEMD_UNIT])
        return True
    pid = running_sshd_pid(pid_file)
    if pid is None:
        return False
    before = _pid_file_stamp(pid_file)
    os.kill(pid, signal.SIGHUP)
    # sshd removes its pid file, re-executes itself and writes the file again once it listens.
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        stamp = _pid_file_stamp(pid_file)
        if stamp is not None and stamp != before and running_sshd_pid(pid_file) is not None:
            return True
        time.sleep(0.05)
    raise HostFailure(
        f"sshd (pid {pid}) did not come back within {timeout_seconds:.0f} s of a reload; read "
        "its log (/var/log/auth.log) and run 'cloche host init' to start it again."
    )


def _logs_unframed(pid: int) -> bool:
    """Whether the sshd at pid writes its log with -E (how cloche started it before the relay)."""
    try:
        # The listener's title keeps its arguments: "sshd: /usr/sbin/sshd ... -E FILE [listener]".
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").split()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return b"-E" in title


def _stop_listener(pid: int, pid_file: Path, timeout_seconds: float) -> None:
    # Only the listener: each connection's sshd runs in its own session and stays connected.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_seconds
    while running_sshd_pid(pid_file) == pid and time.monotonic() < deadline:
        time.sleep(0.05)


def _wait_for_pid(pid_file: Path, timeout_seconds: float) -> bool:
    deadline = time.monotonic() + timeout_seconds
    while running_sshd_pid(pid_file) is None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def ensure_sshd_running(
    *,
    sshd_binary: str = SSHD_BINARY,
    main_config: Path = MAIN_CONFIG,
    pid_file: Path = PID_FILE,
    log_file: Path | None = None,
    systemd: bool | None = None,
    timeout_seconds: float = RELOAD_TIMEOUT_SECONDS,
) -> bool:
    """Start the host's sshd as a system service unless it runs; return whether it was started."""
    if _systemd_runs(systemd):
        active = run(["systemctl", "is-active", "--quiet", SYSTEMD_UNIT], check=False).ok
        run(["systemctl", "enable", "--now", SYSTEMD_UNIT])
        return not active
    pid = running_sshd_pid(pid_file)
    if pid is not None:
        if log_file is None or not _logs_unframed(pid):
            return False
        # An sshd an older cloche started with -E: its log can be forged (see host/sshd_log.py).
        _stop_listener(pid, pid_file, timeout_seconds)
    PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    # Absolute paths: on SIGHUP sshd re-executes itself with these arguments from '/'.
    argv = [sshd_binary, "-f", str(main_config.absolute()), "-o", f"PidFile={pid_file.absolute()}"]
    if log_file is None:
        run(argv)  # without -D sshd daemonizes itself, so it outlives cloche
    else:
        # Not -E: that file would hold client-sent newlines as they are (see host/sshd_log.py).
        # The relay runs in its own session, so it and its sshd outlive cloche too.
        relay = [sys.executable, "-m", "cloche.host.sshd_log", str(log_file.absolute()), "--"]
        start_background(
            [*relay, *argv[:1], "-D", "-e", *argv[1:]],
            log_path=str(log_file.with_name("sshd-relay.log")),
        )
    if _wait_for_pid(pid_file, timeout_seconds):
        return True
    if log_file is not None:
        # Never leave the host without sshd: the old way keeps it reachable.
        run([*argv, "-E", str(log_file.absolute())], check=False)
    raise HostFailure(
        f"sshd started but wrote no pid to {pid_file} within {timeout_seconds:.0f} s; "
        f"read its log ({log_file or '/var/log/auth.log'}) and try again."
    )


def _check_strict_modes(directory: Path) -> None:
    # sshd's StrictModes ignores a key file under any directory a non-root user could change.
    for path in [directory, *directory.parents]:
        status = path.stat()
        if status.st_uid != 0 or status.st_mode & 0o022:
            raise HostFailure(
                f"sshd ignores keys under {path} because it is not root-owned or is group- or "
                f"world-writable; run 'chown root:root {path}; chmod go-w {path}'."
            )


def _keys_path(user: str, keys_dir: Path) -> Path:
    return keys_dir / check_user_name(user)


def write_authorized_keys(user: str, text: str, keys_dir: Path = KEYS_DIR) -> bool:
    """Atomically write user's jump authorized_keys file; return whether it changed."""
    path = _keys_path(user, keys_dir)
    for directory in [*reversed(keys_dir.parents), keys_dir]:
        if not directory.exists():
            directory.mkdir(mode=0o755)
    # 0755 and root-owned: sshd reads the file as the user and insists nobody else can change it.
    os.chown(keys_dir, 0, 0)
    os.chmod(keys_dir, 0o755)  # noqa: S103 - sshd reads the keys as the user
    _check_strict_modes(keys_dir)
    if read_text_or_none(path) == text:
        return False
    write_atomically(path, text, mode=0o644)
    return True


def read_authorized_keys(user: str, keys_dir: Path = KEYS_DIR) -> str | None:
    """User's jump authorized_keys text, or None when there is none."""
    return read_text_or_none(_keys_path(user, keys_dir))


def remove_authorized_keys(user: str, keys_dir: Path = KEYS_DIR) -> bool:
    """Remove user's jump authorized_keys (new logins fail at once); return whether it existed."""
    path = _keys_path(user, keys_dir)
    existed = path.exists()
    restore(path, None)
    return existed


def _in_group(account: pwd.struct_passwd, group: str) -> bool:
    try:
        entry = grp.getgrnam(group)
    except KeyError:
        return False
    return account.pw_gid == entry.gr_gid or account.pw_name in entry.gr_mem


def _account(user: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(user)
    except KeyError:
        return None


def ensure_jump_account(user: str, group: str = JUMP_GROUP) -> bool:
    """Create user's forward-only host account in group unless it exists; return whether created."""
    check_user_name(user)
    ensure_group(group)
    existing = _account(user)
    if existing is not None:
        if not _in_group(existing, group):
            raise Conflict(
                f"A host account named {user!r} already exists and is not a cloche jump account; "
                "remove or rename that account, or choose another cloche user name."
            )
        return False
    # Password '*' is "no password" without the '!' of a locked account: OpenSSH refuses every
    # login, keys included, to a locked account when the host runs sshd with UsePAM no.
    # No subordinate ids: a jump account never runs containers.
    run(
        [
            "useradd",
            "--create-home",
            "--shell",
            NOLOGIN,
            "--gid",
            group,
            "--password",
            "*",
            "--comment",
            "cloche jump account",
            "--key",
            "SUB_UID_COUNT=0",
            "--key",
            "SUB_GID_COUNT=0",
            user,
        ]
    )
    return True


def end_jump_sessions(user: str, group: str = JUMP_GROUP) -> int:
    """End the open sshd sessions of user's jump account; never touch an account outside group."""
    account = _account(check_user_name(user))
    if account is None or not _in_group(account, group):
        return 0
    return jump_sessions.end_sessions(account.pw_uid)


def remove_jump_account(
    user: str, group: str = JUMP_GROUP, timeout_seconds: float = RELOAD_TIMEOUT_SECONDS
) -> bool:
    """Remove user's jump account and end its open tunnels; never touch an account outside group."""
    check_user_name(user)
    account = _account(user)
    if account is None:
        return False
    if not _in_group(account, group):
        log.warning("left host account %s alone: it is not in %s", user, group)
        return False
    # A jump account runs nothing but the unprivileged halves of its sshd sessions; ending them
    # closes the tunnels a removed user still had open (userdel refuses while they run, and a
    # session that was just authenticating can still start one, hence the retries).
    deadline = time.monotonic() + timeout_seconds
    while True:
        jump_sessions.kill_processes(account.pw_uid)
        removed = run(["userdel", "--remove", user], check=False)
        if removed.returncode != USERDEL_IN_USE or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if not removed.ok:
        raise HostFailure(
            f"Could not remove jump account {user!r} ({_first_line(removed.stderr)}); "
            f"end its processes (ps -u {user}) and try again."
        )
    return True
