"""Published routes: tcp/udp ports on the host, and http(s) names through Caddy."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from cloche.model.routes import RouteKind
from cloche.wire.base import WireModel


class Publish(WireModel):
    """POST .../routes: one route spec in the grammar of DESIGN.md."""

    spec: str = Field(max_length=2000)


class PortRoute(WireModel):
    """A tcp or udp port of the host forwarded to a port inside the environment."""

    user: str
    name: str
    spec: str
    created_at: str
    kind: Literal["tcp", "udp"]
    public: str
    target: str
    # The LXD proxy device that carries it.
    device: str


class HttpRoute(WireModel):
    """An http(s) name and path that Caddy sends to a port of the environment."""

    user: str
    name: str
    spec: str
    created_at: str
    kind: Literal["http", "https"]
    public: str
    target: str


class PublishedPortRoute(PortRoute):
    """POST .../routes answered for a port route; changed is False when it was there already."""

    changed: bool


class PublishedHttpRoute(HttpRoute):
    """POST .../routes answered for an http(s) route; changed is False when it was there."""

    changed: bool


# The kind field says which of the two a body is.
Route = Annotated[PortRoute | HttpRoute, Field(discriminator="kind")]
PublishedRoute = Annotated[PublishedPortRoute | PublishedHttpRoute, Field(discriminator="kind")]


class RouteRemoved(WireModel):
    """DELETE .../routes?spec=...: the route withdrawn."""

    user: str
    name: str
    spec: str
    kind: RouteKind
