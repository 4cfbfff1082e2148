"""Every SSH authentication to a jump account lands in the audit log, even those while it was down.

sshd writes its log whether or not the daemon runs; the daemon reads it from where it stopped.
The same lines feed the brute-force bans (core/bans.py), so the log is read once.
"""

from __future__ import annotations

import logging
import threading

from cloche.core.bans import police_failures
from cloche.core.context import Context
from cloche.core.periodic import run_every
from cloche.core.ssh_access import SSHD_LOG
from cloche.model.sshlog import parse_auth_line

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0


def audit_new_authentications(context: Context) -> int:
    """Record the new authentication lines of cloche users; return how many were recorded."""
    lines = context.host.sshd.new_log_lines(context.state_dir, context.state_dir / SSHD_LOG)
    users = {user.name for user in context.database.users.list()} if lines else set()
    recorded = 0
    for line in lines:
        attempt = parse_auth_line(line)
        if attempt is None or attempt.user not in users:
            continue
        context.record(
            attempt.user,
            "authenticated over SSH" if attempt.accepted else "was refused over SSH",
            f"jump:{attempt.user}",
            succeeded=attempt.accepted,
            details={
                "method": attempt.method,
                "key": f"{attempt.key_type} {attempt.fingerprint}" if attempt.fingerprint else None,
                "source": f"{attempt.source}:{attempt.port}",
            },
        )
        recorded += 1
    police_failures(context, lines)
    return recorded


def start_ssh_audit(context: Context) -> threading.Thread:
    """Follow sshd's log in the background for as long as the daemon runs."""
    return run_every("ssh-audit", POLL_SECONDS, lambda: audit_new_authentications(context))
