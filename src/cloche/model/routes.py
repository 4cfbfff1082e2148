"""Pure: the route grammar of DESIGN.md, parsed into typed routes that print back canonically.

```
https://DOMAIN[:ENV_PORT][/PATH][@auth[:GROUP,GROUP...]]
http://DOMAIN[:ENV_PORT][/PATH][@auth[:GROUP,...]]
tcp://HOST_PORT:ENV_PORT
udp://HOST_PORT:ENV_PORT
```

Decisions, each stated in the refusal a person sees:
- ENV_PORT defaults to 80 for http and https alike: the environment serves plain HTTP and Caddy
  terminates TLS on the host.
- DOMAIN is case-insensitive, so it is accepted in any case and kept lowercase; the grammar's own
  words (schemes, ``auth``) are lowercase only. A domain needs two labels and a top-level label
  that is not all digits (an IP address is not a domain); no wildcards, no trailing dot.
- PATH is a prefix of whole segments: letters, digits and ``-._~`` between slashes, no empty,
  ``.`` or ``..`` segments; a trailing slash is dropped (``/api/`` is ``/api``). Default ``/``.
- Groups are ``[a-z0-9_-]+``, in the order written, each once.
- A port has no leading zeros. A tcp/udp HOST_PORT is 1024 or above (lower ports belong to the
  host's own services: SSH, HTTP(S), DNS) and not one of the host's management ports.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Literal, NoReturn

from cloche.model.errors import Invalid

Scheme = Literal["http", "https"]
Protocol = Literal["tcp", "udp"]

DEFAULT_ENV_PORT = 80
LOWEST_HOST_PORT = 1024
# Ports at or above 1024 the host itself listens on; a proxy device there would shadow them.
# 2019 stays reserved: a Caddy not yet moved to its admin socket (or Debian's) listens there.
RESERVED_HOST_PORTS: dict[int, str] = {2019: "Caddy's admin API", 8443: "LXD's API"}

_DIGITS = frozenset("0123456789")
_DOMAIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/")
_GROUP_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
_SCHEMES: tuple[str, ...] = ("https", "http", "tcp", "udp")
_SCHEMES_SHOWN = "https://, http://, tcp:// or udp://"
_MAX_DOMAIN = 253
_MAX_LABEL = 63


class RouteError(Invalid):
    """A route spec that does not follow the grammar, with where (0-based) and why."""

    def __init__(self, spec: str, position: int, reason: str, hint: str) -> None:
        self.spec = spec
        self.position = position
        self.reason = reason
        self.hint = hint
        super().__init__(f"{json.dumps(spec)}: position {position}: {reason}; {hint}.")


@dataclass(frozen=True)
class AuthRule:
    """Who may pass: any signed-in user (no groups) or members of at least one group."""

    groups: tuple[str, ...] = ()

    @property
    def spec(self) -> str:
        """The canonical '@auth[:GROUP,...]' suffix."""
        return "@auth" + (":" + ",".join(self.groups) if self.groups else "")


@dataclass(frozen=True)
class HttpRoute:
    """An HTTP(S) route: Caddy serves DOMAIN + PATH prefix from the env's plain-HTTP ENV_PORT."""

    scheme: Scheme
    domain: str
    env_port: int = DEFAULT_ENV_PORT
    path: str = "/"
    auth: AuthRule | None = None

    @property
    def spec(self) -> str:
        """The canonical text of this route (defaults left out); parse_route reads it back."""
        port = "" if self.env_port == DEFAULT_ENV_PORT else f":{self.env_port}"
        path = "" if self.path == "/" else self.path
        auth = self.auth.spec if self.auth is not None else ""
        return f"{self.scheme}://{self.domain}{port}{path}{auth}"


@dataclass(frozen=True)
class PortRoute:
    """A raw TCP or UDP route: the host's HOST_PORT forwards to the env's ENV_PORT."""

    protocol: Protocol
    host_port: int
    env_port: int

    @property
    def spec(self) -> str:
        """The canonical text of this route; parse_route reads it back."""
        return f"{self.protocol}://{self.host_port}:{self.env_port}"


Route = HttpRoute | PortRoute
RouteKind = Literal["tcp", "udp", "http", "https"]


def route_kind(route: Route) -> RouteKind:
    """tcp or udp for a port route, http or https for an HTTP(S) one."""
    return route.protocol if isinstance(route, PortRoute) else route.scheme


@dataclass(frozen=True)
class PublishedHttpRoute:
    """An HTTP(S) route bound to the environment that serves it: what the proxy config needs."""

    route: HttpRoute
    address: str
    env: str

    def __post_init__(self) -> None:
        try:
            ipaddress.IPv4Address(self.address)
        except ValueError:
            raise Invalid(
                f"Address {self.address!r} of {self.env} is not an IPv4 address; "
                "start the environment so it gets one."
            ) from None


def route_endpoint(route: Route) -> str:
    """What no two routes on a host may share: 'tcp:2222', or scheme, domain and path prefix."""
    if isinstance(route, PortRoute):
        return f"{route.protocol}:{route.host_port}"
    return f"{route.scheme}://{route.domain}{route.path}"


def parse_route(spec: str) -> Route:
    """Parse one route spec; raise RouteError with the position and reason if it is malformed."""
    return _Parser(spec).route()


class _Parser:
    """A cursor over the spec; every refusal names the index of the offending character."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.pos = 0

    def fail(self, position: int, reason: str, hint: str) -> NoReturn:
        raise RouteError(self.spec, position, reason, hint)

    def peek(self) -> str:
        return self.spec[self.pos] if self.pos < len(self.spec) else ""

    def route(self) -> Route:
        scheme = self.scheme()
        if scheme in ("tcp", "udp"):
            return self.port_route("tcp" if scheme == "tcp" else "udp")
        return self.http_route("https" if scheme == "https" else "http")

    def scheme(self) -> str:
        for scheme in _SCHEMES:
            if self.spec.startswith(scheme + "://"):
                self.pos = len(scheme) + 3
                return scheme
        written, separator, _ = self.spec.partition("://")
        if separator:
            self.fail(0, f"unknown scheme {json.dumps(written)}", f"start with {_SCHEMES_SHOWN}")
        self.fail(0, "a route starts with a scheme", f"start with {_SCHEMES_SHOWN}")

    def port_route(self, protocol: Protocol) -> PortRoute:
        host_start = self.pos
        host_port = self.port("the host port")
        if host_port < LOWEST_HOST_PORT:
            self.fail(
                host_start,
                f"host port {host_port} is below {LOWEST_HOST_PORT}, reserved for the host's "
                "own services (SSH, HTTP, HTTPS, DNS)",
                f"choose a host port from {LOWEST_HOST_PORT} to 65535 "
                "(publish web servers with https:// or http:// instead)",
            )
        if host_port in RESERVED_HOST_PORTS:
            self.fail(
                host_start,
                f"host port {host_port} is reserved for {RESERVED_HOST_PORTS[host_port]}",
                "choose another host port",
            )
        if self.peek() != ":":
            self.unexpected("':' and the environment port")
        self.pos += 1
        env_port = self.port("the environment port")
        if self.pos < len(self.spec):
            self.unexpected("the end of the route")
        return PortRoute(protocol, host_port, env_port)

    def http_route(self, scheme: Scheme) -> HttpRoute:
        domain = self.domain()
        env_port = DEFAULT_ENV_PORT
        if self.peek() == ":":
            self.pos += 1
            env_port = self.port("the environment port")
        path = self.path() if self.peek() == "/" else "/"
        auth = self.auth() if self.peek() == "@" else None
        if self.pos < len(self.spec):
            self.unexpected(
                "the end of the route" if auth is not None else "a /PATH, @auth or the end"
            )
        return HttpRoute(scheme, domain, env_port, path, auth)

    def unexpected(self, expected: str) -> NoReturn:
        if self.pos >= len(self.spec):
            self.fail(self.pos, "the route ends too early", f"add {expected}")
        found = json.dumps(self.spec[self.pos])
        self.fail(self.pos, f"unexpected {found}", f"expected {expected} there")

    def port(self, what: str) -> int:
        start = self.pos
        while self.peek() in _DIGITS:
            self.pos += 1
        digits = self.spec[start : self.pos]
        if not digits:
            if self.pos >= len(self.spec):
                self.fail(start, f"the route ends before {what}", f"add {what} (1-65535)")
            self.fail(
                start,
                f"expected {what}, found {json.dumps(self.spec[start])}",
                "write a port number from 1 to 65535",
            )
        # Length first: int() of thousands of digits is slow, and refused past Python's limit.
        if len(digits) > 5 or not 1 <= int(digits) <= 65535:
            self.fail(
                start, f"port {digits} is out of range 1-65535", "write a port from 1 to 65535"
            )
        if digits.startswith("0"):
            self.fail(start, f"port {digits} has a leading zero", f"write it as {int(digits)}")
        return int(digits)

    def domain(self) -> str:
        start = self.pos
        while self.peek() and self.peek() not in ":/@":
            if self.peek() not in _DOMAIN_CHARS:
                self.fail(
                    self.pos,
                    f"{json.dumps(self.peek())} is not allowed in a domain name",
                    "use letters, digits, '-' and '.' (no wildcards, no spaces)",
                )
            self.pos += 1
        text = self.spec[start : self.pos]
        if not text:
            self.fail(start, "the domain is missing", "write a domain such as app.example.com")
        if len(text) > _MAX_DOMAIN:
            self.fail(
                start,
                f"the domain is {len(text)} characters long",
                f"use a domain of at most {_MAX_DOMAIN} characters",
            )
        labels = text.split(".")
        offset = start
        for label in labels:
            self.label(label, offset)
            offset += len(label) + 1
        if len(labels) < 2:
            self.fail(
                start,
                f"{json.dumps(text)} is a single label, not a public domain name",
                "write a full domain such as app.example.com",
            )
        if all(char in _DIGITS for char in text.replace(".", "")):
            self.fail(
                start,
                f"{json.dumps(text)} is an IP address, not a domain name",
                "publish under a DNS name that points to this host",
            )
        if all(char in _DIGITS for char in labels[-1]):
            self.fail(
                offset - len(labels[-1]) - 1,
                "the domain ends in a numeric label, as an IP address does",
                "publish under a DNS name that points to this host",
            )
        return text.lower()

    def label(self, label: str, offset: int) -> None:
        if not label:
            self.fail(
                offset,
                "the domain has an empty label",
                "remove the extra '.' (a domain neither starts nor ends with '.')",
            )
        if len(label) > _MAX_LABEL:
            self.fail(
                offset,
                f"a domain label is {len(label)} characters long",
                f"keep each label between dots to at most {_MAX_LABEL} characters",
            )
        if label.startswith("-") or label.endswith("-"):
            where = offset if label.startswith("-") else offset + len(label) - 1
            self.fail(
                where,
                "a domain label starts or ends with '-'",
                "begin and end each label with a letter or digit",
            )

    def path(self) -> str:
        start = self.pos
        while self.peek() and self.peek() != "@":
            if self.peek() not in _PATH_CHARS:
                self.fail(
                    self.pos,
                    f"{json.dumps(self.peek())} is not allowed in a route path",
                    "use letters, digits and '-', '.', '_', '~' between slashes",
                )
            self.pos += 1
        text = self.spec[start : self.pos]
        segments = text[1:].split("/")
        offset = start + 1
        for index, segment in enumerate(segments):
            last = index == len(segments) - 1
            if not segment and not last:
                self.fail(offset, "the path has an empty segment ('//')", "remove the extra '/'")
            if segment in (".", ".."):
                self.fail(
                    offset,
                    f"the path has a {json.dumps(segment)} segment",
                    "write the path without '.' or '..' segments",
                )
            offset += len(segment) + 1
        # A prefix of whole segments: '/api/' and '/api' publish the same thing.
        return text.rstrip("/") or "/"

    def auth(self) -> AuthRule:
        at = self.pos
        if not self.spec.startswith("auth", at + 1):
            self.fail(
                at + 1, "expected 'auth' after '@'", "write @auth or @auth:GROUP,GROUP at the end"
            )
        self.pos = at + 5
        if self.peek() != ":":
            return AuthRule()
        self.pos += 1
        groups: list[str] = []
        while True:
            start = self.pos
            while self.peek() and self.peek() != ",":
                if self.peek() not in _GROUP_CHARS:
                    self.fail(
                        self.pos,
                        f"{json.dumps(self.peek())} is not allowed in a group name",
                        "use lowercase letters, digits, '_' and '-', separated by ','",
                    )
                self.pos += 1
            group = self.spec[start : self.pos]
            if not group:
                self.fail(start, "a group name is empty", "write one group name between commas")
            if group in groups:
                self.fail(
                    start, f"group {json.dumps(group)} is listed twice", "list each group once"
                )
            groups.append(group)
            if not self.peek():
                return AuthRule(tuple(groups))
            self.pos += 1
