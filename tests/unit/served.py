"""The real API app on a FakeContext with fixed clocks, ports and names, for client and CLI tests.

`world(context)` fills a context with two users, three environments, two routes and two
snapshots, every time and address the same on every run, so the CLI's output can be golden.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from cloche.core import environments, routes, snapshots
from cloche.model.config import parse_config
from tests.unit.fakes import GIB, FakeContext, FakeNetwork, add_user, new_env, wait_operation

CONFIG = parse_config({"firewall": {"mode": "protect"}, "proxy": {"tls": "internal"}})
CREATED = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
ACTOR = "carol"


@dataclass
class FixedNetwork(FakeNetwork):
    """The host's network stack as the tests want it: every port free, a fixed name."""

    def port_in_use(self, protocol: Literal["tcp", "udp"], port: int) -> bool:
        """No port is taken."""
        return False

    def fqdn(self) -> str:
        """The host's name in every published address."""
        return "host.example"


def fix_time_and_network(context: FakeContext) -> None:
    """Every record is created at CREATED, snapshots too; the host is host.example."""
    context.database.engine.clock = lambda: CREATED
    context.fake.now = CREATED
    context.host.network = FixedNetwork()


def create(context: FakeContext, user: str, name: str, *, cpu: int = 1, memory: int = 1) -> None:
    """Create an environment through core and wait until it is ready."""
    wanted = new_env(name, user=user, cpu=cpu, memory_bytes=memory * GIB)
    operation = environments.request_create(context, ACTOR, wanted)
    assert wait_operation(context, operation).status == "succeeded"


def world(context: FakeContext) -> None:
    """alice (web, db) and bob (api); web publishes two routes and has two snapshots."""
    fix_time_and_network(context)
    add_user(context, "alice")
    add_user(context, "bob", keys=("ecdsa", "ed25519"))
    create(context, "alice", "web")
    create(context, "alice", "db", cpu=2, memory=2)
    create(context, "bob", "api")
    routes.publish(context, ACTOR, "alice", "web", "tcp://2222:22")
    routes.publish(context, ACTOR, "alice", "web", "https://web.example:8080")
    snapshots.take_snapshot(context, ACTOR, "alice", "web", "before-upgrade")
    context.fake.now = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
    context.user_instances("alice").snapshot("web", "auto-20260504T1000Z")
    context.fake.now = CREATED
