"""The API fuzz: every route and parameter of the served OpenAPI document, and never a 5xx.

Each operation gets a deterministic sweep (its plausible request, then each parameter and body
field in turn hostile, left out or malformed) and hypothesis's random mixes of the same values,
derandomized so CI sees the same requests every run. Every answer must be below 500, and every
4xx must be the project's error body: the error's class name and one sentence. The app runs on
a FakeContext (tests/unit/fuzz_world.py), so no LXD or host is touched.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloche.api.app import create_app
from cloche.api.body_limit import limit_for
from cloche.model.errors_wire import ERROR_CLASSES
from tests.unit.callers import header_caller
from tests.unit.fakes import make_context
from tests.unit.fuzz_requests import (
    Operation,
    Request,
    missing_plausible,
    operations,
    plausible,
    requests,
    sweep,
    to_wire,
)
from tests.unit.fuzz_world import PLAIN_NAME, World, stored_names, unrenderable

RANDOM_EXAMPLES = 25


def _served_operations() -> list[Operation]:
    with tempfile.TemporaryDirectory() as directory:
        context = make_context(Path(directory))
        try:
            return operations(create_app(context, header_caller).openapi())
        finally:
            context.operations.shutdown()
            context.database.close()


OPERATIONS = _served_operations()


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    world = World()
    yield world
    world.close()


def check_answer(status: int, body: Any, what: str) -> None:
    """Below 500, and a 4xx is {"error": <class name>, "message": <one sentence>}."""
    assert status < 500, f"{what} -> {status} {body!r}"
    if status < 400:
        return
    assert isinstance(body, dict), f"{what} -> {status} {body!r}"
    assert set(body) == {"error", "message"}, f"{what} -> {status} {body!r}"
    assert body["error"] in ERROR_CLASSES, f"{what} -> {status} {body!r}"
    message = body["message"]
    assert isinstance(message, str), f"{what} -> {status} {body!r}"
    assert message.strip(), f"{what} -> {status} {body!r}"
    assert "\n" not in message, f"{what} -> {status} {body!r}"
    assert message.endswith("."), f"{what} -> {status} {body!r}"


# The only directives cloche's ssh_config holds: any other line was injected by a value.
SSH_CONFIG_DIRECTIVES = frozenset(
    {
        "HostName",
        "Port",
        "User",
        "UserKnownHostsFile",
        "StrictHostKeyChecking",
        "RequestTTY",
        "ForwardAgent",
        "ProxyJump",
        "HostKeyAlias",
        "CheckHostIP",
        "IdentityFile",
        "IdentitiesOnly",
    }
)


def check_generated(body: Any, what: str) -> None:
    """A generated ssh_config holds only cloche's directives, and known_hosts only key lines."""
    if not (isinstance(body, dict) and set(body) == {"config", "known_hosts"}):
        return
    for line in body["config"].splitlines():
        if line and not line.startswith(("# cloche: ", "Host ")):
            assert line.startswith("    "), f"{what} -> config line {line!r}"
            assert line.split()[0] in SSH_CONFIG_DIRECTIVES, f"{what} -> config line {line!r}"
    for line in body["known_hosts"].splitlines():
        assert len(line.split()) == 3, f"{what} -> known_hosts line {line!r}"
        assert not line.startswith("@"), f"{what} -> known_hosts line {line!r}"


def send(world: World, request: Request) -> None:
    """Send one request to a pristine world and judge the answer and its operation."""
    world.ensure_pristine()
    wire = to_wire(request, world.seeded)
    response = world.client.request(
        wire.method, wire.url, headers=wire.headers, content=wire.content
    )
    body = response.json() if response.content else None
    check_answer(response.status_code, body, wire.describe())
    check_generated(body, wire.describe())
    if response.status_code == 202:
        world.finish_operation(body)
    crashes = world.crash_log.crashes
    assert not crashes, f"{wire.describe()} crashed an operation: {crashes[0]}"
    odd = [name for name in stored_names(world.context) if not PLAIN_NAME.fullmatch(name)]
    assert not odd, f"{wire.describe()} stored the name {odd[0]!r}"
    poisoned = unrenderable(world.context)
    assert not poisoned, f"{wire.describe()} poisoned the world: {poisoned[0]}"


def test_every_parameter_has_plausible_values() -> None:
    assert missing_plausible(OPERATIONS) == []


def test_the_fuzz_covers_every_route_of_the_app() -> None:
    served = {(operation.method, operation.path) for operation in OPERATIONS}
    assert len(served) == len(OPERATIONS) >= 40
    assert ("POST", "/v1/environments/{user}/{name}/exec") in served


def test_a_changed_world_is_put_back_as_seeded(world: World) -> None:
    world.ensure_pristine()
    response = world.client.post("/v1/environments/alice/web/stop")
    world.finish_operation(response.json())
    assert world.context.fake.instances["cloche-alice"]["web"].info.status == "Stopped"
    restores = world.restores
    world.ensure_pristine()
    assert world.restores == restores + 1
    assert world.context.fake.instances["cloche-alice"]["web"].info.status == "Running"
    assert world.client.get("/v1/environments/alice/web/snapshots").json()[0]["name"] == (
        "before-upgrade"
    )


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_sweep(world: World, operation: Operation) -> None:
    for request in sweep(operation):
        send(world, request)


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_a_body_over_the_limit_is_refused_on_every_route(
    world: World, operation: Operation
) -> None:
    """Declared or chunked, a body past the route's limit is a 413 sentence and changes nothing."""
    wire = to_wire(plausible(operation), world.seeded)
    huge = b"[" + b"1," * (limit_for(wire.url.partition("?")[0]) // 2) + b"1]"
    for content in (huge, iter([huge[: len(huge) // 2], huge[len(huge) // 2 :]])):
        world.ensure_pristine()
        restores = world.restores
        headers = {**wire.headers, "Content-Type": "application/json"}
        response = world.client.request(wire.method, wire.url, headers=headers, content=content)
        assert response.status_code == 413, f"{wire.describe()} -> {response.status_code}"
        check_answer(413, response.json(), wire.describe())
        world.ensure_pristine()
        assert world.restores == restores, f"{wire.describe()} changed the world"


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
@settings(
    max_examples=RANDOM_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random(world: World, operation: Operation, data: st.DataObject) -> None:
    send(world, data.draw(requests(operation), label="request"))
