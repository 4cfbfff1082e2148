"""cloche.Client against the real API app on fakes: its surface, every route, errors, waiting."""

from __future__ import annotations

import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Match, Route

import cloche
import cloche.client
from cloche.api.app import create_app
from cloche.client import Client, HostFailure, Invalid, NotFound, OperationHandle, QuotaExceeded
from cloche.core import backup_repositories
from cloche.wire import Environment, EnvironmentInfo, HttpRoute, PortRoute, PublishedPortRoute
from tests.unit.callers import ADMIN_HEADER, header_caller
from tests.unit.fakes import FakeContext, TestClient, ban_for_an_hour, events, public_key
from tests.unit.served import ACTOR

PUBLIC_NAMES = {
    "DEFAULT_SOCKET",
    "AuditLog",
    "BackupRepositories",
    "Backups",
    "Bans",
    "Client",
    "ClocheError",
    "Conflict",
    "EgressPolicies",
    "Environments",
    "Forbidden",
    "HostFailure",
    "Invalid",
    "Keys",
    "NotFound",
    "OperationHandle",
    "Operations",
    "QuotaExceeded",
    "Routes",
    "Snapshots",
    "Tokens",
    "Unauthenticated",
    "Users",
    "default_socket",
}
RESOURCES = (
    "operations",
    "environments",
    "users",
    "keys",
    "snapshots",
    "routes",
    "egress",
    "backups",
    "audit",
    "bans",
    "tokens",
)


@pytest.fixture
def context(served_world: FakeContext) -> FakeContext:
    return served_world


@pytest.fixture
def http(context: FakeContext) -> Iterator[TestClient]:
    with TestClient(create_app(context, header_caller), headers={ADMIN_HEADER: ACTOR}) as http:
        yield http


@pytest.fixture
def client(http: TestClient) -> Client:
    return Client(http=http)


# The public surface ---------------------------------------------------------------------------


def test_the_public_names_are_the_announced_ones() -> None:
    assert set(cloche.client.__all__) == PUBLIC_NAMES, (
        "cloche.client's public names changed: update PUBLIC_NAMES and docs/client.md"
    )
    for name in PUBLIC_NAMES:
        assert getattr(cloche.client, name) is not None
    assert cloche.__all__ == ["Client", "__version__"]
    assert cloche.Client is Client
    with pytest.raises(AttributeError):
        _ = cloche.Server  # type: ignore[attr-defined]


def test_import_cloche_loads_no_client() -> None:
    probe = (
        "import cloche, sys; "
        "print([m for m in ('httpx', 'pydantic', 'cloche.client') if m in sys.modules])"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == "[]"


def _mentions_any(hint: object) -> bool:
    return hint is typing.Any or any(_mentions_any(arg) for arg in typing.get_args(hint))


def test_no_public_signature_says_any(client: Client) -> None:
    owners = [client, *(getattr(client, name) for name in RESOURCES), client.backups.repositories]
    classes = {type(owner) for owner in owners} | {OperationHandle}
    checked = 0
    for cls in classes:
        for base in cls.__mro__:
            if not base.__module__.startswith("cloche.client"):
                continue
            for name, method in vars(base).items():
                if name.startswith(("_", "model_")) or not callable(method):
                    continue
                hints = typing.get_type_hints(method)
                assert not any(_mentions_any(hint) for hint in hints.values()), (base, name)
                checked += 1
    assert checked >= 40


# Every route, through the client --------------------------------------------------------------


def test_every_route_has_a_client_method(
    context: FakeContext, http: TestClient, client: Client, tmp_path: Path
) -> None:
    app_routes = [route for route in http.app.routes if isinstance(route, Route)]  # type: ignore[attr-defined]
    called: set[tuple[str, str]] = set()

    def record(request: httpx.Request) -> None:
        scope = {"type": "http", "path": request.url.path, "method": request.method}
        for route in app_routes:
            if route.matches(scope)[0] == Match.FULL:
                called.add((request.method, route.path))
                return
        raise AssertionError(f"{request.method} {request.url.path} matches no route")

    http.event_hooks = {"request": [record], "response": []}
    backup_repositories.ensure_local_repository(
        context.state_dir, context.host.secrets, context.host.restic, context.host.backup_files
    )
    assert client.health().status == "ok"

    users, keys = client.users, client.keys
    assert users.add("dave", [public_key("ed25519")], cpu=8, memory="16GiB").cpu == 8
    assert [user.name for user in users.list()] == ["alice", "bob", "dave"]
    assert users.set_quota("dave", max_envs=4).max_envs == 4
    assert users.set_host_account("dave", "dave").host_account == "dave"
    added = keys.add("dave", public_key("ecdsa"))
    assert len(users.get("dave").ssh_keys) == 2
    assert keys.remove("dave", added.fingerprint).fingerprint == added.fingerprint
    both = keys.add_many("dave", [public_key("ecdsa"), public_key("rsa3072")])
    assert {key.fingerprint for key in both} < {
        key.fingerprint for key in users.get("dave").ssh_keys
    }
    assert "Host " in users.ssh_config("alice", "/tmp/known").config

    envs = client.environments
    created = envs.create("dave", "box", memory="1GiB", disk="5GiB", wait=True)
    assert (created.status, created.target) == ("succeeded", "dave/box")
    assert [env.name for env in envs.list("dave")] == ["box"]
    assert envs.get("dave", "box").routes == []
    assert envs.stop("dave", "box", wait=True).kind == "stop environment"
    envs.start("dave", "box", wait=True)
    envs.restart("dave", "box").wait()
    assert envs.resize("dave", "box", cpu=2).limits.cpu == 2
    assert envs.exec("dave", "box", ["true"]).exit_code == 0

    shots = client.snapshots
    assert shots.take("dave", "box", "one").kind == "manual"
    assert [shot.name for shot in shots.list("dave", "box")] == ["one"]
    assert shots.set_policy("dave", "box", hourly=2).effective.hourly == 2
    assert shots.policy("dave", "box").overrides == {"hourly": 2}
    shots.restore("dave", "box", "one", wait=True)
    shots.restore_as_new("dave", "box", "one", "copy", wait=True)
    assert shots.remove("dave", "box", "one").removed == "one"

    published = client.routes.publish("dave", "box", "tcp://2300:22")
    assert isinstance(published, PublishedPortRoute) and published.changed
    assert {route.spec for route in client.routes.list("dave")} == {"tcp://2300:22"}
    assert len(client.routes.list()) == 3
    assert client.routes.list("dave", "box")[0].public == "tcp://host.example:2300"
    assert client.routes.unpublish("dave", "box", "tcp://2300:22").kind == "tcp"
    assert client.egress.set("dave", "box", "none").previous == "open"
    assert client.egress.get("dave", "box").egress == "none"
    ban_for_an_hour(context, "203.0.113.7")
    assert [ban.address for ban in client.bans.list()] == ["203.0.113.7"]
    assert client.bans.lift("203.0.113.7").failures == 10
    made = client.tokens.create("alice", name="ci", scopes=["read"], expires="1d")
    assert made.secret.startswith(f"cloche_{made.token.id}_")
    assert [token.id for token in client.tokens.list("alice")] == [made.token.id]
    assert client.tokens.revoke(made.token.id).revoked

    backups = client.backups
    assert backups.repositories.add("offsite", str(tmp_path / "offsite")).state == "initialised"
    assert {repo.name for repo in backups.repositories.list()} == {"local", "offsite"}
    backups.run("dave", "box", wait=True)
    backups.run_all(repository="offsite", wait=True)
    [backup] = backups.list("dave", "box", repository="local")
    assert len(backups.list()) == 1 + 5
    assert backups.check(read_data=True).ok
    backups.restore(backup.id, as_new="restored", wait=True)
    backups.forget(repository="offsite", wait=True)
    backups.remove(backup.id, wait=True)
    backups.repositories.remove("offsite")

    assert client.operations.get(created.id).status == "succeeded"
    assert client.audit.tail(3)[-1].action == "removed backup repository"
    assert client.audit.verify().ok
    envs.remove("dave", "copy", wait=True)
    users.remove("dave", purge=True, wait=True)

    # The API's own routes: the OpenAPI document and its viewers are plain starlette routes.
    every = {
        (method, route.path)
        for route in app_routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert len(every) > 40
    assert every - called == set(), "routes without a client method"


def test_the_actor_is_sent(context: FakeContext, client: Client) -> None:
    client.egress.set("alice", "db", "none")
    assert events(context, "changed egress")[-1].actor == ACTOR


def test_answers_are_wire_models(client: Client) -> None:
    listed = client.environments.list()
    assert all(type(env) is Environment for env in listed)
    assert type(client.environments.get("alice", "web")) is EnvironmentInfo
    kinds = {type(route) for route in client.routes.list("alice", "web")}
    assert kinds == {PortRoute, HttpRoute}


# Errors ---------------------------------------------------------------------------------------


def test_errors_are_the_projects_classes_with_the_daemons_sentence(client: Client) -> None:
    with pytest.raises(NotFound, match=r"^User 'alice' has no environment named 'nope'"):
        client.environments.get("alice", "nope")
    with pytest.raises(Invalid, match=r"^memory: .* fix the request and retry\.$"):
        client.environments.create("alice", "big", memory="lots")
    with pytest.raises(QuotaExceeded, match="quota"):
        client.environments.resize("alice", "db", cpu=99)
    with pytest.raises(Invalid, match="Name the user"):
        client.routes.list(None, "web")


def test_no_daemon_is_a_host_failure_naming_the_socket(tmp_path: Path) -> None:
    socket = str(tmp_path / "none.sock")
    with Client(socket) as client, pytest.raises(HostFailure, match=r"does not answer on .*none"):
        client.health()


def test_cloche_socket_chooses_the_socket(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLOCHE_SOCKET", str(tmp_path / "elsewhere.sock"))
    assert cloche.client.default_socket() == str(tmp_path / "elsewhere.sock")
    with Client() as client, pytest.raises(HostFailure, match=r"elsewhere\.sock"):
        client.users.list()


def test_a_body_the_client_does_not_understand_is_a_host_failure() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"version": "9", "status": "new"})

    http = httpx.Client(transport=httpx.MockTransport(answer), base_url="http://cloche")
    with Client(http=http) as client, pytest.raises(HostFailure, match="does not understand"):
        client.health()


# Operations -----------------------------------------------------------------------------------


def test_a_failed_operation_raises_its_error(context: FakeContext, client: Client) -> None:
    context.fake.fail_boot = True
    started = client.environments.create("alice", "bad")
    with pytest.raises(HostFailure, match="stopped while booting"):
        started.wait()
    failed = client.operations.get(started.id)
    assert failed.status == "failed"
    assert failed.error is not None and failed.error.error == "HostFailure"


def test_waiting_gives_up_after_the_timeout(context: FakeContext, client: Client) -> None:
    release = __import__("threading").Event()
    context.fake.before["stop"] = lambda *args: release.wait(5)
    try:
        started = client.environments.stop("alice", "web")
        assert started.status == "running"
        with pytest.raises(HostFailure, match=f"{started.id} is still running"):
            started.wait(timeout=0.05)
    finally:
        release.set()
    progress: list[str] = []
    assert client.operations.wait(started, on_progress=progress.append).status == "succeeded"
    assert progress[-1] == "done"


def test_a_handle_made_by_hand_cannot_wait(client: Client) -> None:
    started = client.environments.stop("alice", "web", wait=True)
    orphan = OperationHandle.model_validate(started.model_dump())
    with pytest.raises(HostFailure, match="not started by a client"):
        orphan.wait()
