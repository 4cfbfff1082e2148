"""Converge the host firewall (table inet cloche) with the config and the database.

Desired state: the config's mode, bridge, gateway and SSH port, the host ports of published
tcp/udp routes, and every environment that has an address (its owner, name and egress policy).
converge_firewall renders it, loads it atomically (checked first, the previous table restored on
failure) and keeps the script it loaded in STATE_DIR/firewall.nft and nft's listing of the result
in STATE_DIR/firewall.listing. When the live table is not that listing, someone or something
changed it behind cloche's back: that drift is repaired by the same load and audited once as
"repaired firewall".

It runs before a new environment starts (so its address is never in a stale tenant set), after
one is removed, on an egress change, at daemon start, every reconciler pass and in host init.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cloche.core.audited import audited
from cloche.core.context import Context, HostEffects, open_context
from cloche.core.revert import Reverter
from cloche.model.audit import JsonValue
from cloche.model.config import ClocheConfig
from cloche.model.egress import format_egress, parse_egress
from cloche.model.errors import ClocheError
from cloche.model.firewall import CLOSED_RANGES, EnvNetwork, FirewallPolicy
from cloche.model.names import check_environment_name, check_user_name
from cloche.model.records import RouteRecord
from cloche.model.routes import PortRoute, parse_route
from cloche.render.nftables import TABLE, render_ruleset

log = logging.getLogger(__name__)

STATE_FILE = "firewall.nft"
# The live table as nft listed it right after cloche loaded it: what drift is measured against.
LISTING = "firewall.listing"
# Why the last load failed (the previous table stayed); gone after a good load. 'host status'
# fails while it exists.
LOAD_ERROR = "firewall.error"
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
    )


def converge_firewall(context: Context, actor: str) -> bool:
    """Render and load the desired table; True if the live table changed. Audits drift once.

    Drift is a live table other than the listing cloche's own last load left, whatever the
    desired table is now (it changes with the environments, routes and the host's networks).
    """
    with context.locked("firewall"):
        text = render_ruleset(desired_policy(context))
        files = context.host.files
        script_file, listing_file = (context.state_dir / name for name in (STATE_FILE, LISTING))
        loaded = files.read(listing_file)
        before = context.host.firewall.current()
        try:
            context.host.firewall.apply(text)
        except ClocheError as error:
            files.write(context.state_dir / LOAD_ERROR, str(error), mode=0o600)
            raise
        files.remove(context.state_dir / LOAD_ERROR)
        after = context.host.firewall.current()
        if files.read(script_file) != text:
            files.write(script_file, text, mode=0o600)
        if after is not None and after != loaded:
            files.write(listing_file, after, mode=0o600)
        if loaded is not None and before != loaded:
            log.warning("the firewall table %s had drifted; restored it", TABLE)
            context.record(
                actor,
                "repaired firewall",
                TABLE,
                details={"was": "missing" if before is None else "changed by hand"},
            )
        return before != after


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


def set_egress(context: Context, actor: str, user: str, name: str, egress: str) -> EgressChange:
    """Change an environment's egress policy and load it (live; the env keeps running)."""
    target = f"{user}/{name}"
    details: dict[str, JsonValue] = {"egress": egress[:500]}
    with audited(context, actor, "changed egress", target, details):
        user_name, env_name = check_user_name(user), check_environment_name(name)
        stored = format_egress(parse_egress(egress))
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
