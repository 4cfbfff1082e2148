"""Reconcile the database with LXD (the source of truth for instances), at start and every minute.

Records are written before instances are made and deleted after them, so after a crash:
- a record still 'creating' or 'deleting' has no operation running any more: its half-made
  instance (if any) and the record are removed (repaired);
- a 'ready' record whose instance is gone is reported (state Missing), never crashed on;
- an instance in a cloche project with no record was not made by cloche: it is reported.
Each pass also converges the firewall, Caddy, every eth0 (the assigned address, anti-spoofing)
and the proxy devices of published routes, and reports guests that claim other addresses.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading

from cloche.core import firewall, key_push, routes, ssh_access
from cloche.core.context import Context
from cloche.core.periodic import run_every
from cloche.model.addresses import address_mismatch
from cloche.model.errors import ClocheError, HostFailure
from cloche.model.errors_wire import error_body
from cloche.model.instances import ROLE_ENVIRONMENT
from cloche.render.instance import user_of_project

log = logging.getLogger(__name__)
ACTOR = "cloche-reconciler"
INTERVAL_SECONDS = 60.0


def reconcile_environments(context: Context, *, startup: bool = False) -> list[str]:
    """One pass: repair (at startup) or report every mismatch; return one line per finding."""
    findings: list[str] = []
    records = {(env.user, env.name): env for env in context.database.environments.list()}
    running_targets = {
        operation.target for operation in context.database.operations.list(status="running")
    }
    for (user, name), env in records.items():
        target = f"{user}/{name}"
        instances = context.user_instances(user)
        if env.status in ("creating", "deleting"):
            # While this daemon runs, every such record belongs to one of its own operations
            # (which cleans up after itself); only at startup can one be an orphan.
            if not startup or target in running_targets or user in running_targets:
                continue
            with context.locked(f"env:{target}"):  # repair the orphan
                with contextlib.suppress(ClocheError):
                    instances.delete(name)
                context.database.environments.delete(user, name)
            findings.append(f"removed half-made {target} (left {env.status} by a stopped daemon)")
            context.record(ACTOR, "repaired environment", target, details={"was": env.status})
            continue
        if env.status == "ready" and instances.find(name) is None:
            if env.state_hint != "Missing":
                context.database.environments.update(user, name, state_hint="Missing")
                context.record(
                    ACTOR,
                    "found environment missing",
                    target,
                    succeeded=False,
                    details={"fix": f"remove it with 'cloche rm {target}'"},
                )
            findings.append(f"{target} has a record but LXD has no instance")
    for project in context.projects().list_projects(prefix="cloche-"):
        owner = user_of_project(project)
        if owner is None:
            continue
        for instance in context.instances(project).list():
            if instance.role == ROLE_ENVIRONMENT and (owner, instance.name) not in records:
                finding = f"{owner}/{instance.name} exists in LXD without a record"
                findings.append(finding)
                if finding in context.reported:
                    continue  # audited once per daemon run, not every pass
                context.reported.add(finding)
                context.record(
                    ACTOR,
                    "found unrecorded instance",
                    f"{owner}/{instance.name}",
                    succeeded=False,
                    details={"project": project},
                )
    return findings


def check_addresses(context: Context) -> list[str]:
    """Compare what running guests report on eth0 with the addresses cloche assigned.

    A mismatch changes nothing (the NIC's filters drop traffic from any other address and the
    record stays the truth); it is audited once per daemon run and kept for 'host status'.
    """
    mismatches: list[str] = []
    environments = [env for env in context.database.environments.list() if env.status == "ready"]
    for user in sorted({env.user for env in environments}):
        states = context.user_instances(user).states()
        for env in (env for env in environments if env.user == user):
            state = states.get(env.name)
            if state is None or state.status != "Running":
                continue
            mismatch = address_mismatch(env.qualified_name, env.address, state.addresses)
            if mismatch is None:
                continue
            mismatches.append(mismatch)
            if mismatch not in context.reported:
                context.reported.add(mismatch)
                context.record(
                    ACTOR,
                    "found address mismatch",
                    env.qualified_name,
                    succeeded=False,
                    details={"assigned": env.address, "reported": list(state.addresses)},
                )
    context.address_mismatches = mismatches
    return mismatches


def start_environments_that_should_run(context: Context) -> list[str]:
    """Start every ready environment cloche last left running whose instance is stopped.

    LXD never starts environments at boot (boot.autostart is false), so after a reboot (or an
    LXD restart) this is what brings them back, and only ever after the firewall is loaded.
    """
    started: list[str] = []
    environments = [
        env
        for env in context.database.environments.list()
        if env.status == "ready" and env.state_hint == "Running"
    ]
    for user in sorted({env.user for env in environments}):
        instances = context.user_instances(user)
        states = instances.states()
        for env in (env for env in environments if env.user == user):
            state = states.get(env.name)
            if state is None or state.status != "Stopped":
                continue
            try:
                routes.converge_devices(context, env)  # its NIC's filters first
                instances.start(env.name)
            except ClocheError as error:
                log.warning("could not start %s: %s", env.qualified_name, error)
                continue
            started.append(env.qualified_name)
            context.record(
                ACTOR, "started environment", env.qualified_name, details={"why": "boot"}
            )
    return started


def reconcile_once(context: Context, *, startup: bool = False) -> list[str]:
    """A whole pass, logging instead of raising so the daemon keeps serving."""
    try:
        # The firewall first: it depends on the records only, not on LXD answering.
        firewall.converge_firewall(context, ACTOR)
        firewall_loaded = True
    except Exception as error:  # never let the firewall stop the reconciler
        log.warning("could not converge the firewall: %s", error)
        firewall_loaded = False
    try:
        findings = reconcile_environments(context, startup=startup)
        # At the daemon's start (a boot, an upgrade), bring back what cloche left running.
        if startup and firewall_loaded:
            started = start_environments_that_should_run(context)
            findings += [f"started {name} (it was running before LXD stopped)" for name in started]
            # Keys changed while an environment was stopped, or a push that failed, land now.
            findings += key_push.push_everywhere(context, ACTOR)
        elif startup:
            findings.append("started no environment: the firewall is not loaded (fail closed)")
    except ClocheError as error:
        log.warning("reconcile pass failed: %s", error)
        return [f"reconcile failed: {error}"]
    findings += routes.reconcile_routes(context, ACTOR)
    try:
        findings += check_addresses(context)
    except ClocheError as error:
        findings.append(f"could not compare addresses: {error}")
    for finding in findings:
        log.warning("reconcile: %s", finding)
    return findings


def start_reconciler(context: Context) -> threading.Thread:
    """Fail operations a previous daemon left running, reconcile now and then every minute."""
    lost = HostFailure("The cloche daemon stopped during this operation; run it again.")
    stopped = context.database.operations.fail_unfinished(json.dumps(error_body(lost)))
    if stopped:
        log.warning("marked %d operation(s) of a previous daemon as failed", stopped)

    passes = 0

    def one_pass() -> None:
        nonlocal passes
        passes += 1
        if passes == 1:
            try:
                ssh_access.converge_all_users(context)
            except ClocheError as error:
                log.warning("could not converge the jump accounts: %s", error)
        reconcile_once(context, startup=passes == 1)

    return run_every("reconciler", INTERVAL_SECONDS, one_pass)
