"""The network: published routes (ports and names reached from outside) and egress policies."""

from __future__ import annotations

import functools

from pydantic import TypeAdapter

from cloche.client.connection import path_of
from cloche.client.resource import Resource
from cloche.model.errors import Invalid
from cloche.wire import (
    Egress,
    EgressChanged,
    HttpRoute,
    PortRoute,
    PublishedHttpRoute,
    PublishedPortRoute,
    PublishedRoute,
    Route,
    RouteRemoved,
)


# The kind field says which of the two models a route body is. Built on first use: a command
# that lists no routes does not pay for their validators.
@functools.cache
def _routes_shape() -> TypeAdapter[list[PortRoute | HttpRoute]]:
    return TypeAdapter(list[Route])


@functools.cache
def _published_shape() -> TypeAdapter[PublishedPortRoute | PublishedHttpRoute]:
    return TypeAdapter(PublishedRoute)


def _routes(user: str, name: str) -> str:
    return path_of("environments", user, name, "routes")


class Routes(Resource):
    """Published routes: https/http names through Caddy, raw tcp/udp ports of the host."""

    def publish(self, user: str, name: str, spec: str) -> PublishedPortRoute | PublishedHttpRoute:
        """Publish a port of an environment (spec: 'https://DOMAIN[:PORT][/PATH]', 'tcp://H:E')."""
        return self._connection.fetch_shape(
            _published_shape(), "POST", _routes(user, name), body={"spec": spec}
        )

    def unpublish(self, user: str, name: str, spec: str) -> RouteRemoved:
        """Withdraw a published route; the port is private again at once."""
        return self._connection.fetch(
            RouteRemoved, "DELETE", _routes(user, name), params={"spec": spec}
        )

    def list(self, user: str | None = None, name: str | None = None) -> list[PortRoute | HttpRoute]:
        """Published routes: every one, one user's, or (with name too) one environment's."""
        if name is not None:
            if user is None:
                raise Invalid(f"Name the user of environment {name!r} to list its routes.")
            return self._connection.fetch_shape(_routes_shape(), "GET", _routes(user, name))
        params = {"user": user} if user is not None else None
        return self._connection.fetch_shape(
            _routes_shape(), "GET", path_of("routes"), params=params
        )


class EgressPolicies(Resource):
    """.../{user}/{name}/egress: what an environment may reach outside the host."""

    def get(self, user: str, name: str) -> Egress:
        """The stored policy: 'open', 'none' or 'allow:CIDR,CIDR'."""
        path = path_of("environments", user, name, "egress")
        return self._connection.fetch(Egress, "GET", path)

    def set(self, user: str, name: str, policy: str) -> EgressChanged:
        """Change the policy (applied at once while the environment runs)."""
        path = path_of("environments", user, name, "egress")
        return self._connection.fetch(EgressChanged, "PATCH", path, body={"egress": policy})
