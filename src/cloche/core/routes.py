"""Publish what environments serve: tcp/udp routes as LXD proxy devices, http(s) routes via Caddy.

The database holds the routes; everything else is converged from it:
- tcp:// and udp:// -> a proxy device on the environment's instance (render.proxy_devices) and
  the port opened in the firewall's protect mode (core.firewall reads the routes);
- http:// and https:// -> one Caddy config rendered from every http(s) route of the host
  (render.caddy), loaded whole through Caddy's admin API, which keeps the old config on failure.

A publish or unpublish stores the change, converges, and on failure puts the database back and
converges again, so the host never keeps half of a change. The reconciler calls reconcile_routes
every minute: drift (a device or Caddy config changed by hand) is repaired and audited.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

from cloche.core.audited import audited
from cloche.core.context import Context
from cloche.core.firewall import converge_firewall
from cloche.core.firewall import port_routes as _port_routes
from cloche.core.revert import Reverter
from cloche.model.audit import JsonValue
from cloche.model.errors import ClocheError, Conflict, Invalid
from cloche.model.instances import AUTOSTART_KEY, InstanceInfo
from cloche.model.names import check_environment_name, check_user_name
from cloche.model.records import EnvironmentRecord, RouteRecord
from cloche.model.routes import (
    HttpRoute,
    PortRoute,
    PublishedHttpRoute,
    Route,
    parse_route,
    route_endpoint,
)
from cloche.render.caddy import render_caddy_config
from cloche.render.lxd import static_nic
from cloche.render.proxy_devices import device_name, plan_devices

log = logging.getLogger(__name__)

ProxyChange = Literal["unchanged", "loaded", "repaired"]
CADDY_TARGET = "caddy"


def _canonical_json(config: Any) -> str:
    return json.dumps(config, sort_keys=True, indent=1) + "\n"


# Caddy ------------------------------------------------------------------------------------


def desired_proxy_config(context: Context) -> dict[str, Any]:
    """The whole Caddy config for every http(s) route whose environment has an address."""
    addresses = {(env.user, env.name): env.address for env in context.database.environments.list()}
    published = []
    for record in context.database.routes.list():
        route = parse_route(record.spec)
        address = addresses.get((record.user, record.name))
        if isinstance(route, HttpRoute) and address:
            published.append(PublishedHttpRoute(route, address, f"{record.user}/{record.name}"))
    proxy = context.config.proxy
    return render_caddy_config(published, tls=proxy.tls, acme_email=proxy.acme_email)


def converge_proxy(context: Context, actor: str) -> ProxyChange:
    """Load the desired Caddy config unless Caddy runs it; drift (a repair) is audited."""
    with context.locked("proxy"):
        desired = desired_proxy_config(context)
        text = _canonical_json(desired)
        live = context.host.proxy.current()
        if live is not None and _canonical_json(live) == text:
            return "unchanged"
        last = context.host.proxy.last_loaded(context.state_dir)
        context.host.proxy.load(desired, context.state_dir)
        if last is None or _canonical_json(last) != text:
            return "loaded"
        # What cloche loaded last is still what it wants: someone else changed Caddy.
        was = "not running" if live is None else "changed by hand"
        log.warning("Caddy's config had drifted (%s); loaded it again", was)
        context.record(actor, "repaired proxy config", CADDY_TARGET, details={"was": was})
        return "repaired"


# Proxy devices ----------------------------------------------------------------------------


def _apply_devices(
    context: Context, env: EnvironmentRecord, info: InstanceInfo, routes: list[PortRoute]
) -> dict[str, JsonValue] | None:
    instances = context.user_instances(env.user)
    changed: dict[str, JsonValue] = {}
    # Fail closed at boot: LXD must leave starting it to cloche (after the firewall).
    if info.config.get(AUTOSTART_KEY) != "false":
        instances.set_config(env.name, {AUTOSTART_KEY: "false"})
        changed["config"] = [AUTOSTART_KEY]
    nic = static_nic(context.config.network.bridge, env.address) if env.address else None
    plan = plan_devices(info.devices, routes, nic)
    if not plan.empty:
        instances.change_devices(env.name, plan.add, plan.remove)
        changed["added"] = [name for name in sorted(plan.add)]
        changed["removed"] = list(plan.remove)
    return changed or None


def converge_devices(context: Context, env: EnvironmentRecord) -> dict[str, JsonValue] | None:
    """Give one environment's instance exactly its port routes' proxy devices; what changed."""
    info = context.user_instances(env.user).find(env.name)
    if info is None:
        return None
    routes = _port_routes(context.database.routes.list(env.user, env.name))
    return _apply_devices(context, env, info, routes)


def reconcile_routes(context: Context, actor: str) -> list[str]:
    """Converge Caddy and every environment's proxy devices; one line per repair (audited)."""
    findings: list[str] = []
    try:
        if converge_proxy(context, actor) == "repaired":
            findings.append("repaired Caddy's config (it had drifted)")
    except ClocheError as error:
        findings.append(f"could not converge Caddy: {error}")
    # Under the lock publish and unpublish hold, so no pass plans from routes read before one.
    with context.locked("routes"):
        findings += _reconcile_devices(context, actor)
    return findings


def _reconcile_devices(context: Context, actor: str) -> list[str]:
    findings: list[str] = []
    routes_by_env: dict[tuple[str, str], list[RouteRecord]] = {}
    for record in context.database.routes.list():
        routes_by_env.setdefault((record.user, record.name), []).append(record)
    environments = [env for env in context.database.environments.list() if env.status == "ready"]
    for user in sorted({env.user for env in environments}):
        try:
            instances = {info.name: info for info in context.user_instances(user).list()}
        except ClocheError as error:
            findings.append(f"could not read {user}'s instances: {error}")
            continue
        for env in (env for env in environments if env.user == user):
            info = instances.get(env.name)
            if info is None:
                continue  # reconcile_environments reports the missing instance
            with context.locked(f"env:{env.qualified_name}"):
                try:
                    changed = _apply_devices(
                        context, env, info, _port_routes(routes_by_env.get((user, env.name), []))
                    )
                except ClocheError as error:
                    findings.append(f"could not converge {env.qualified_name}'s devices: {error}")
                    continue
            if changed is not None:
                findings.append(f"repaired the devices of {env.qualified_name}: {changed}")
                context.record(actor, "repaired devices", env.qualified_name, details=changed)
    return findings


# Use cases ------------------------------------------------------------------------------------


def _ready(context: Context, user: str, name: str) -> EnvironmentRecord:
    env = context.database.environments.get(check_user_name(user), check_environment_name(name))
    if env.status != "ready":
        raise Conflict(
            f"{env.qualified_name} is {env.status}; wait until it is ready, then publish again."
        )
    return env


def _refuse_auth(route: Route) -> None:
    if isinstance(route, HttpRoute) and route.auth is not None:
        raise Invalid(
            f"{route.spec} asks for sign-in (@auth), which needs OIDC, not configured yet on "
            "this host; publish it without @auth, or keep it private until OIDC is configured."
        )


def _refuse_busy_port(context: Context, route: Route) -> None:
    in_use = context.host.network.port_in_use
    if isinstance(route, PortRoute) and in_use(route.protocol, route.host_port):
        raise Conflict(
            f"Host port {route.host_port}/{route.protocol} is already in use by a program on "
            "the host; choose another HOST_PORT."
        )


def _converge_for(context: Context, actor: str, env: EnvironmentRecord, route: Route) -> None:
    if isinstance(route, PortRoute):
        converge_devices(context, env)
        converge_firewall(context, actor)
    else:
        converge_proxy(context, actor)


def _undo(context: Context, actor: str, env: EnvironmentRecord, route: Route) -> None:
    try:
        _converge_for(context, actor, env, route)
    except ClocheError as error:  # the reconciler retries within a minute
        log.warning("could not undo a failed route change on %s: %s", env.qualified_name, error)


def _public_host(context: Context) -> str:
    # The name people reach the host by, as in generated ssh configs.
    return context.config.ssh.host or context.host.network.fqdn()


@dataclass(frozen=True)
class PortRouteView:
    """A published tcp/udp route: where it is reached, where it leads, and its proxy device."""

    record: RouteRecord
    route: PortRoute
    public: str
    target: str
    device: str


@dataclass(frozen=True)
class HttpRouteView:
    """A published http(s) route: the URL Caddy serves and the environment port behind it."""

    record: RouteRecord
    route: HttpRoute
    public: str
    target: str


RouteView = PortRouteView | HttpRouteView


@dataclass(frozen=True)
class Publication:
    """A route published; changed is False when the identical route was there already."""

    route: RouteView
    changed: bool


def describe_route(context: Context, record: RouteRecord) -> RouteView:
    """A route with where it is reached and where it leads."""
    route = parse_route(record.spec)
    env = context.database.environments.get(record.user, record.name)
    if isinstance(route, PortRoute):
        return PortRouteView(
            record,
            route,
            public=f"{route.protocol}://{_public_host(context)}:{route.host_port}",
            target=f"127.0.0.1:{route.env_port} inside {env.qualified_name}",
            device=device_name(route),
        )
    return HttpRouteView(
        record,
        route,
        public=f"{route.scheme}://{route.domain}{route.path}",
        target=f"{env.address or '(no address yet)'}:{route.env_port}",
    )


def publish(context: Context, actor: str, user: str, name: str, spec: str) -> Publication:
    """Publish one route of an environment; an already published identical route is kept."""
    target = f"{user}/{name}"
    with audited(context, actor, "published route", target, {"route": spec[:300]}):
        route = parse_route(spec)
        _refuse_auth(route)
        env = _ready(context, user, name)
        with context.locked("routes"):
            for record in context.database.routes.list(env.user, env.name):
                if record.spec == route.spec:
                    return Publication(describe_route(context, record), changed=False)
            _refuse_busy_port(context, route)
            with Reverter() as revert:
                record = context.database.routes.add(
                    env.user, env.name, route.spec, route_endpoint(route)
                )
                revert.add("converge without the route", lambda: _undo(context, actor, env, route))
                revert.add(
                    "forget the route",
                    lambda: context.database.routes.remove(env.user, env.name, route.spec),
                )
                _converge_for(context, actor, env, route)
                revert.success()
        return Publication(describe_route(context, record), changed=True)


def unpublish(context: Context, actor: str, user: str, name: str, spec: str) -> RouteRecord:
    """Withdraw one route of an environment: its device, firewall rule or Caddy route goes."""
    target = f"{user}/{name}"
    with audited(context, actor, "unpublished route", target, {"route": spec[:300]}):
        route = parse_route(spec)
        env = context.database.environments.get(check_user_name(user), check_environment_name(name))
        with context.locked("routes"), Reverter() as revert:
            record = context.database.routes.remove(env.user, env.name, route.spec)
            revert.add("converge with the route", lambda: _undo(context, actor, env, route))
            revert.add(
                "keep the route",
                lambda: context.database.routes.add(
                    env.user, env.name, record.spec, record.endpoint
                ),
            )
            _converge_for(context, actor, env, route)
            revert.success()
        return record


def list_routes(
    context: Context, user: str | None = None, name: str | None = None
) -> list[RouteView]:
    """Published routes: all, one user's, or one environment's."""
    if user is not None:
        user = check_user_name(user)
        if name is not None:
            context.database.environments.get(user, check_environment_name(name))
        else:
            context.database.users.get(user)
    return [describe_route(context, record) for record in context.database.routes.list(user, name)]


def after_removal(context: Context, actor: str, had_http_routes: bool) -> None:
    """Drop a removed environment's http(s) routes from Caddy (its records went with it)."""
    if not had_http_routes:
        return
    try:
        converge_proxy(context, actor)
    except ClocheError as error:
        log.warning("could not remove the routes of a removed environment from Caddy: %s", error)


def has_http_routes(context: Context, user: str, name: str) -> bool:
    """True when the environment publishes any http:// or https:// route."""
    return any(
        isinstance(parse_route(record.spec), HttpRoute)
        for record in context.database.routes.list(user, name)
    )
