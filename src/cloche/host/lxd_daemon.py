"""Starting LXD (and lxcfs): through systemd when it runs, else as background processes."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from cloche.host.run import run
from cloche.host.services import running_pid, start_service
from cloche.model.errors import HostFailure

LXCFS_DIR = Path("/var/lib/lxcfs")


def systemd_is_running() -> bool:
    """True when systemd is PID 1 (the sd_booted test)."""
    return Path("/run/systemd/system").is_dir()


def lxd_answers(timeout_seconds: int = 1) -> bool:
    """True when the LXD daemon answers on its socket."""
    return run(["lxd", "waitready", f"--timeout={timeout_seconds}"], check=False, timeout=30).ok


def _lxcfs_state() -> str:
    """'mounted', 'absent', or 'stale' (its FUSE mount is left over from a dead lxcfs)."""
    try:
        return "mounted" if (LXCFS_DIR / "proc" / "meminfo").exists() else "absent"
    except OSError as error:
        if error.errno == errno.ENOTCONN:
            return "stale"
        raise


def lxcfs_is_mounted() -> bool:
    """True when lxcfs serves its /proc files (so limits show inside containers)."""
    return _lxcfs_state() == "mounted"


def _start_lxcfs(state_dir: Path) -> None:
    state = _lxcfs_state()
    if state == "mounted":
        return
    if state == "stale":
        # A killed lxcfs leaves its mount behind; a new one cannot mount over it.
        run(["umount", "-l", str(LXCFS_DIR)], check=False)
    if running_pid(state_dir, "lxcfs") is None:
        LXCFS_DIR.mkdir(parents=True, exist_ok=True)
        start_service(state_dir, "lxcfs", ["lxcfs", str(LXCFS_DIR)])
    for _ in range(50):
        if lxcfs_is_mounted():
            return
        time.sleep(0.1)


def start_lxd(state_dir: Path, wait_seconds: int = 60) -> str:
    """Make sure LXD runs and answers; return how ('already running', 'systemd', 'background')."""
    if not systemd_is_running():
        # lxcfs is what shows each container its own limits in /proc; new containers pick it
        # up even when LXD already runs.
        _start_lxcfs(state_dir)
    if lxd_answers():
        return "already running"
    if systemd_is_running():
        run(["systemctl", "enable", "--now", "lxcfs.service"], check=False)
        run(["systemctl", "enable", "--now", "lxd.socket", "lxd.service"], timeout=120)
        how = "systemd"
    else:
        if running_pid(state_dir, "lxd") is None:
            start_service(
                state_dir,
                "lxd",
                ["lxd", "--group", "root", "--logfile", str(state_dir / "log" / "lxd.log")],
                env=dict(os.environ),
            )
        how = "background"
    if not lxd_answers(wait_seconds):
        raise HostFailure(
            f"LXD did not answer within {wait_seconds} s; read {state_dir}/log/lxd.log "
            "(or 'journalctl -u lxd') and run 'cloche host init' again."
        )
    return how
