"""Brute-force defense of the host's sshd: ban addresses that keep failing to sign in.

The SSH audit loop (core/ssh_audit.py) hands over every batch of sshd log lines it reads, so the
log is read once. Failed connections are counted in the database, the planner (model/bans.py)
decides, and the firewall drops banned addresses through the sets banned and banned6 (only their
elements change). Each ban and each lift is audited.

Lines carry no time of their own (sshd -E and journalctl -o cat print none): a failure counts
from when it was read, within a second of sshd writing it while the daemon runs.
"""

from __future__ import annotations

import logging

from cloche.core.context import Context
from cloche.core.firewall import converge_quietly
from cloche.model.bans import (
    Ban,
    BanPlan,
    BanPolicy,
    active,
    check_address,
    parse_duration,
    plan_bans,
)
from cloche.model.config import ClocheConfig
from cloche.model.sshfailures import parse_outcome

log = logging.getLogger(__name__)

ACTOR = "cloche-bans"


def ban_policy(config: ClocheConfig) -> BanPolicy:
    """The config's ban settings; the environments' bridge is never banned."""
    bans = config.bans
    return BanPolicy(
        max_failures=bans.max_failures,
        window=parse_duration(bans.window),
        duration=parse_duration(bans.duration),
        never=(config.network.subnet, *bans.never),
    )


def police_failures(context: Context, lines: list[str]) -> BanPlan:
    """Count the failed sign-ins in lines, ban and unban as the policy says; return the plan."""
    outcomes = [outcome for outcome in map(parse_outcome, lines) if outcome is not None]
    store = context.database.bans
    policy = ban_policy(context.config)
    with context.locked("bans"):
        now = context.host.clock.now()
        if outcomes:
            store.record_outcomes(((o.address, o.port, o.failed) for o in outcomes), now)
        bans = store.list()
        # Most passes read no line and find no ban: they leave the failures table alone.
        failures = store.failures(now - policy.window) if outcomes else []
        plan = plan_bans(failures, bans, policy, now)
        if plan.changed:
            store.change(plan.add, [ban.address for ban in plan.drop])
        if outcomes:
            store.forget_failures(before=plan.forget_before)
    if plan.changed:
        converge_quietly(context, ACTOR)
        for ban in plan.drop:
            reason = "ran out" if ban.until <= now else "protected by the config"
            _audit(context, ACTOR, "lifted ban", ban, reason)
        for ban in plan.add:
            log.warning("banned %s after %d failed SSH sign-ins", ban.address, ban.failures)
            _audit(context, ACTOR, "banned address", ban, None)
    return plan


def list_bans(context: Context) -> list[Ban]:
    """The bans in force now, by address."""
    return active(context.database.bans.list(), context.host.clock.now())


def lift_ban(context: Context, actor: str, address: str) -> Ban:
    """End the ban of address now and forget its failures; NotFound when it is not banned."""
    normal = check_address(address)
    with context.locked("bans"):
        ban = context.database.bans.remove(normal)
    converge_quietly(context, actor)
    _audit(context, actor, "lifted ban", ban, "lifted by hand")
    return ban


def _audit(context: Context, actor: str, action: str, ban: Ban, reason: str | None) -> None:
    details: dict[str, str | int] = {"failures": ban.failures, "until": ban.until.isoformat()}
    if reason is not None:
        details["reason"] = reason
    context.record(actor, action, ban.address, details=dict(details))
