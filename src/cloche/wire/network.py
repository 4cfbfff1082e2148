"""An environment's egress policy: 'open', 'none' or 'allow:CIDR,CIDR'."""

from __future__ import annotations

from pydantic import Field

from cloche.wire.base import WireModel


class SetEgress(WireModel):
    """PATCH .../egress."""

    egress: str = Field(max_length=4000)


class Egress(WireModel):
    """GET .../egress: the stored policy."""

    user: str
    name: str
    egress: str


class EgressChanged(Egress):
    """PATCH .../egress answered: the policy now in force and the one before."""

    previous: str
