"""Pure: Caddy's JSON config for published http:// and https:// routes, loaded via its admin API.

One server listens on the HTTPS port for https routes (Caddy obtains their certificates and
redirects their plain-HTTP requests), another on the HTTP port for http routes. A route matches
its domain and its path prefix (the path is passed on unchanged) and proxies to the
environment's plain-HTTP port. Routes are ordered by domain, then longest path first, so the
most specific prefix wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from cloche.model.errors import Conflict, Invalid
from cloche.model.paths import CADDY_ADMIN_LISTEN
from cloche.model.routes import PublishedHttpRoute
from cloche.model.text import one_line

TlsMode = Literal["internal", "acme"]
HTTPS_SERVER = "cloche_https"
HTTP_SERVER = "cloche_http"


def render_caddy_config(
    routes: Sequence[PublishedHttpRoute],
    *,
    tls: TlsMode,
    admin_listen: str = CADDY_ADMIN_LISTEN,
    http_port: int = 80,
    https_port: int = 443,
    acme_email: str | None = None,
) -> dict[str, Any]:
    """The whole Caddy config (admin, http and tls apps) for routes; deterministic."""
    _check_admin_listen(admin_listen)
    if tls not in ("internal", "acme"):
        raise Invalid(f"TLS mode {tls!r} is unknown; use 'internal' or 'acme'.")
    if acme_email is not None and ("@" not in acme_email or any(c.isspace() for c in acme_email)):
        raise Invalid(
            f"ACME e-mail {acme_email!r} is not an e-mail address; give one such as "
            "admin@example.com."
        )
    ordered = sorted(routes, key=_order)
    _refuse_auth_and_duplicates(ordered)
    https = [published for published in ordered if published.route.scheme == "https"]
    http = [published for published in ordered if published.route.scheme == "http"]
    servers: dict[str, Any] = {}
    if https:
        servers[HTTPS_SERVER] = {
            "listen": [f":{https_port}"],
            "routes": [_route(published) for published in https],
        }
    if http:
        servers[HTTP_SERVER] = {
            "listen": [f":{http_port}"],
            "routes": [_route(published) for published in http],
        }
    config: dict[str, Any] = {
        # cloche keeps its own copy of the last good config; Caddy's autosave is not wanted.
        "admin": {"listen": admin_listen, "config": {"persist": False}},
        "apps": {"http": {"http_port": http_port, "https_port": https_port, "servers": servers}},
        # The reconciler reads the config every minute; one log line per read is noise.
        "logging": {"logs": {"default": {"exclude": ["admin.api"]}}},
    }
    domains = sorted({published.route.domain for published in https})
    if domains:
        config["apps"]["tls"] = {
            "automation": {"policies": [_tls_policy(domains, tls, acme_email)]}
        }
    if domains and tls == "internal":
        # Caddy would otherwise add its local root to the host's trust store.
        config["apps"]["pki"] = {"certificate_authorities": {"local": {"install_trust": False}}}
    return config


def _order(published: PublishedHttpRoute) -> tuple[str, str, int, str]:
    route = published.route
    return (route.scheme, route.domain, -len(route.path), route.path)


def _check_admin_listen(admin_listen: str) -> None:
    socket_path = admin_listen.removeprefix("unix/")
    if socket_path == admin_listen or not socket_path.startswith("/") or "|" in socket_path:
        # On TCP, even loopback, any local process could load a file server rooted at /.
        raise Invalid(
            f"Caddy's admin address {admin_listen!r} is not a unix socket; it controls every "
            "route, so use unix//ABSOLUTE/PATH in a directory only root and Caddy may enter."
        )


def _refuse_auth_and_duplicates(routes: Sequence[PublishedHttpRoute]) -> None:
    seen: dict[tuple[str, str, str], str] = {}
    for published in routes:
        route = published.route
        if route.auth is not None:
            # Publishing it without the check would expose what its owner meant to protect.
            raise Invalid(
                f"Route {route.spec} of {published.env} needs sign-in, which this host does not "
                "offer yet; publish it without @auth or wait for OIDC support."
            )
        key = (route.scheme, route.domain, route.path)
        if key in seen:
            raise Conflict(
                f"{route.scheme}://{route.domain}{route.path} is published by both {seen[key]} "
                f"and {published.env}; unpublish one of them."
            )
        seen[key] = published.env


def _route(published: PublishedHttpRoute) -> dict[str, Any]:
    route = published.route
    # The shared guard, under the route grammar's own checks: values from users stay one line.
    for value, what in (
        (route.domain, "The domain"),
        (route.path, "The path"),
        (published.env, "The environment"),
    ):
        one_line(value, what)
    match: dict[str, Any] = {"host": [route.domain]}
    if route.path != "/":
        # A prefix of whole segments: /api and /api/... but not /apis.
        match["path"] = [route.path, f"{route.path}/*"]
    return {
        "match": [match],
        "handle": [
            {
                "handler": "reverse_proxy",
                "upstreams": [{"dial": f"{published.address}:{route.env_port}"}],
            }
        ],
        "terminal": True,
    }


def _tls_policy(domains: list[str], tls: TlsMode, acme_email: str | None) -> dict[str, Any]:
    issuer: dict[str, Any] = {"module": tls}
    # The internal issuer has no e-mail field: Caddy would refuse the config.
    if tls == "acme" and acme_email is not None:
        issuer["email"] = acme_email
    return {"subjects": domains, "issuers": [issuer]}


def route_count(config: dict[str, Any]) -> int:
    """How many routes the http servers of a Caddy config have."""
    servers = config.get("apps", {}).get("http", {}).get("servers", {})
    return sum(len(server.get("routes", [])) for server in servers.values())
