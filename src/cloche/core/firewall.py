"""Converge the host firewall (table inet cloche) with the config and the database.

Desired state: the config's mode, bridge, gateway and SSH port, the host ports of published
tcp/udp routes, every environment that has an address (its owner, name and egress policy), and
the addresses banned now (core/bans.py).
converge_firewall renders it, loads it atomically (checked first, the previous table restored on
failure) and keeps the script it loaded in STATE_DIR/firewall.nft, its structure and set elements
in STATE_DIR/firewall.elements.json and nft's listing of the result in STATE_DIR/firewall.listing.
When only set elements differ from that load (an environment came or went, an egress changed),
only they change, in one transaction; a new structure (the mode, ports) replaces the table.
When the live table is not that listing, someone or something changed it behind cloche's back:
that drift is repaired by a whole-table load and audited once as "repaired firewall".

It runs before a new environment starts (so its address is never in a stale tenant set), after
one is removed, on an egress change, at daemon start, every reconciler pass and in host init.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cloche.core.audited import audited
from cloche.core.context import Context, HostEffects, open_context
from cloche.core.revert import Reverter
from cloche.model.audit import JsonValue
from cloche.model.bans import active
from cloche.model.config import ClocheConfig
from cloche.model.egress import check_within_ceiling, format_egress, parse_egress
from cloche.model.errors import ClocheError
from cloche.model.firewall import CLOSED_RANGES, EnvNetwork, FirewallPolicy
from cloche.model.names import check_environment_name, check_user_name
from cloche.model.records import RouteRecord
from cloche.model.routes import PortRoute, parse_route
from cloche.render.nftables import (
    TABLE,
    SetElement,
    render_element_changes,
    render_ruleset,
    render_structure,
    set_elements,
)

log = logging.getLogger(__name__)

STATE_FILE = "firewall.nft"
# The live table as nft listed it right after cloche loaded it: what drift is measured against.
LISTING = "firewall.listing"
# Why the last load failed (the previous table stayed); gone after a good load. 'host status'
# fails while it exists.
LOAD_ERROR = "firewall.error"
# The structure and set elements of that load: element changes are computed against it.
ELEMENTS = "firewall.elements.json"
HOST_INIT_ACTOR = "cloche-host-init"


def _gateway(config: ClocheConfig) -> str:
    return str(ipaddress.IPv4Interface(config.network.gateway_cidr).ip)


def port_routes(records: Iterable[RouteRecord]) -> list[PortRoute]:
    """The tcp:// and udp:// routes among stored route records."""
    parsed = (parse_route(record.spec) for record in records)
    return [route for route in parsed if isinstance(route, PortRoute)]


def desired_policy(context: Context) -> FirewallPolicy:
    """What the firewall must enforce now, from the config and the database."""
    envs = tuple(
        EnvNetwork(
            env.user,
            env.name,
            env.address,
            parse_egress(env.egress),
        )
        for env in context.database.environments.list()
        if env.address
    )
    config = context.config
    tags = {user.name: user.uid_base for user in context.database.users.list()}
    published = port_routes(context.database.routes.list())
    host_networks = [
        network
        for interface, networks in context.host.network.interface_networks().items()
        if interface not in ("lo", config.network.bridge)
        for network in networks
    ]
    return FirewallPolicy(
        mode=config.firewall.mode,
        bridge=config.network.bridge,
        gateway=_gateway(config),
        ssh_port=config.ssh.port,
        published_tcp=tuple(sorted({r.host_port for r in published if r.protocol == "tcp"})),
        published_udp=tuple(sorted({r.host_port for r in published if r.protocol == "udp"})),
        envs=envs,
        closed=(*CLOSED_RANGES, *host_networks),
        opened=tuple(config.network.open_ranges),
        tenant_tags={env.user: tags[env.user] for env in envs},
        banned=tuple(
            ban.address for ban in active(context.database.bans.list(), context.host.clock.now())
        ),
    )


def converge_firewall(context: Context, actor: str) -> bool:
    """Load the desired table; True if the live table changed. Audits drift once.

    When the live table is the one cloche last loaded and only set elements differ from it, just
    those elements change (flows and counters of the rest stay); otherwise the whole table is
    replaced. Drift is a live table other than the listing cloche's own last load left, whatever
    the desired table is now (it changes with the environments, routes and the host's networks).
    """
    with context.locked("firewall"):
        policy = desired_policy(context)
        text = render_ruleset(policy)
        files = context.host.files
        script_file, listing_file, elements_file = (
            context.state_dir / name for name in (STATE_FILE, LISTING, ELEMENTS)
        )
        loaded = files.read(listing_file)
        before = context.host.firewall.current()
        intact = loaded is not None and before == loaded
        try:
            _load(context, policy, text, _last_load(files.read(elements_file)) if intact else None)
        except ClocheError as error:
            files.write(context.state_dir / LOAD_ERROR, str(error), mode=0o600)
            raise
        files.remove(context.state_dir / LOAD_ERROR)
        after = context.host.firewall.current()
        for path, content in (
            (script_file, text),
            (listing_file, after),
            (elements_file, _saved_load(policy)),
        ):
            if content is not None and files.read(path) != content:
                files.write(path, content, mode=0o600)
        if loaded is not None and before != loaded:
            log.warning("the firewall table %s had drifted; restored it", TABLE)
            context.record(
                actor,
                "repaired firewall",
                TABLE,
                details={"was": "missing" if before is None else "changed by hand"},
            )
        return before != after


def _load(context: Context, policy: FirewallPolicy, text: str, last: _LastLoad | None) -> None:
    """Change only set elements when last (the live table's own load) has policy's structure."""
    firewall = context.host.firewall
    if last is None or last.structure != render_structure(policy):
        firewall.apply(text)
        return
    changes = render_element_changes(last.elements, set_elements(policy))
    if not changes:
        return
    try:
        firewall.change_elements(changes)
    except ClocheError as error:
        log.warning("changing firewall elements failed, replacing the table: %s", error)
        firewall.apply(text)


@dataclass(frozen=True)
class _LastLoad:
    structure: str
    elements: dict[str, tuple[SetElement, ...]]


def _saved_load(policy: FirewallPolicy) -> str:
    elements = {
        name: [[element.key, element.text] for element in values]
        for name, values in set_elements(policy).items()
    }
    return json.dumps({"structure": render_structure(policy), "elements": elements}, indent=1)


def _last_load(text: str | None) -> _LastLoad | None:
    """What cloche's last load held, from its saved file (None when missing or unreadable)."""
    if text is None:
        return None
    try:
        saved = json.loads(text)
        elements = {
            str(name): tuple(SetElement(str(key), str(value)) for key, value in values)
            for name, values in saved["elements"].items()
        }
        return _LastLoad(str(saved["structure"]), elements)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def converge_quietly(context: Context, actor: str) -> None:
    """converge_firewall, logging a failure instead of raising (the reconciler retries)."""
    try:
        converge_firewall(context, actor)
    except ClocheError as error:
        log.warning("could not converge the firewall: %s", error)


def converge_host_firewall(config: ClocheConfig, state_dir: Path, host: HostEffects) -> bool:
    """converge_firewall for 'host init', which runs before (or beside) the daemon."""
    context = open_context(config, state_dir, host)
    try:
        return converge_firewall(context, HOST_INIT_ACTOR)
    finally:
        context.operations.shutdown()
        context.database.close()


@dataclass(frozen=True)
class EgressChange:
    """An environment's egress policy now in force, and the one before."""

    user: str
    name: str
    egress: str
    previous: str


def set_egress(
    context: Context,
    actor: str,
    user: str,
    name: str,
    egress: str,
    *,
    within_ceiling: bool = False,
) -> EgressChange:
    """Change an environment's egress policy and load it (live; the env keeps running).

    within_ceiling refuses a policy wider than the owner's ceiling (a member's own change).
    """
    target = f"{user}/{name}"
    details: dict[str, JsonValue] = {"egress": egress[:500]}
    with audited(context, actor, "changed egress", target, details):
        user_name, env_name = check_user_name(user), check_environment_name(name)
        policy = parse_egress(egress)
        if within_ceiling:
            ceiling = context.database.users.get(user_name).max_egress
            check_within_ceiling(policy, ceiling, user_name)
        stored = format_egress(policy)
        with context.locked(f"egress:{target}"):
            env = context.database.environments.get(user_name, env_name)
            previous = env.egress
            with Reverter() as revert:
                context.database.environments.update(user_name, env_name, egress=stored)
                revert.add(
                    "put the previous egress back",
                    lambda: context.database.environments.update(
                        user_name, env_name, egress=previous
                    ),
                )
                converge_firewall(context, actor)
                revert.success()
            if env.address and stored != previous:
                # Established flows pass the rules before egress is checked: end them, so
                # what the new policy forbids stops now (allowed ones simply reconnect).
                context.host.firewall.forget_connections(env.address)
        return EgressChange(user_name, env_name, stored, previous)


def egress_of(context: Context, user: str, name: str) -> str:
    """The stored egress policy of an environment."""
    return context.database.environments.get(
        check_user_name(user), check_environment_name(name)
    ).egress
