"""Every SSH authentication to a jump account or to root lands in the audit log, even while down.

sshd writes its log whether or not the daemon runs; the daemon reads it from where it stopped.
The same lines feed the brute-force bans (core/bans.py), so the log is read once.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from cloche.core.bans import police_failures
from cloche.core.context import Context
from cloche.core.periodic import run_every
from cloche.core.ssh_access import SSHD_LOG
from cloche.model.errors import Invalid
from cloche.model.sshkeys import parse_public_key
from cloche.model.sshlog import SshAuthentication, parse_auth_line

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
ROOT = "root"


def _emergency_fingerprints(context: Context) -> frozenset[str]:
    fingerprints = set()
    for line in context.config.ssh.emergency_keys:
        # A bad key never reached sshd ('cloche host init' refuses it), so it cannot match.
        with contextlib.suppress(Invalid):
            fingerprints.add(parse_public_key(line).fingerprint)
    return frozenset(fingerprints)


def _endpoint(attempt: SshAuthentication) -> str:
    host = f"[{attempt.source}]" if ":" in attempt.source else attempt.source
    return f"{host}:{attempt.port}"


def _record_root(context: Context, attempt: SshAuthentication, emergency: frozenset[str]) -> None:
    # The host's root account (its own keys or cloche's emergency keys): only logins, since
    # refusals for root are what every scanner on the internet sends.
    context.record(
        ROOT,
        "logged in to the host as root over SSH",
        "host:root",
        details={
            "key": f"{attempt.key_type} {attempt.fingerprint}",
            "emergency_key": attempt.fingerprint in emergency,
            "source": _endpoint(attempt),
        },
    )


def audit_new_authentications(context: Context) -> int:
    """Record the new authentications of cloche users and root logins; return how many."""
    lines = context.host.sshd.new_log_lines(context.state_dir, context.state_dir / SSHD_LOG)
    # Failures of any user (known or not) count toward bans; do it first so it never waits.
    police_failures(context, lines)
    attempts = [attempt for line in lines if (attempt := parse_auth_line(line)) is not None]
    if not attempts:
        return 0
    users = {user.name for user in context.database.users.list()}
    emergency = _emergency_fingerprints(context)
    recorded = 0
    for attempt in attempts:
        if attempt.user == ROOT and attempt.accepted:
            _record_root(context, attempt, emergency)
        elif attempt.user in users:
            context.record(
                attempt.user,
                "authenticated over SSH" if attempt.accepted else "was refused over SSH",
                f"jump:{attempt.user}",
                succeeded=attempt.accepted,
                details={
                    "method": attempt.method,
                    "key": f"{attempt.key_type} {attempt.fingerprint}",
                    "source": _endpoint(attempt),
                },
            )
        else:
            continue
        recorded += 1
    return recorded


def start_ssh_audit(context: Context) -> threading.Thread:
    """Follow sshd's log in the background for as long as the daemon runs."""
    return run_every("ssh-audit", POLL_SECONDS, lambda: audit_new_authentications(context))
