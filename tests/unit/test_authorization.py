"""Who may call what: every route has a rule, members reach only their own things, the socket
names the caller by its peer credentials."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from cloche.api.app import create_app
from cloche.api.authorization import RULES, rule_of
from cloche.api.peer import peer_uid
from cloche.core.identity import principal_of_peer
from cloche.model.errors import Forbidden, NotFound, Unauthenticated
from cloche.model.names import no_such_user
from cloche.model.principals import (
    HostAccount,
    Principal,
    authorize,
    operation_owner,
    principal_of_account,
    visible_user,
)
from tests.unit.callers import header_caller, member
from tests.unit.fakes import FakeContext, TestClient, make_context
from tests.unit.served import create, world

ALICE = Principal(name="alice", role="member", user="alice", via="test")
ADMIN = Principal(name="root", role="admin", user=None, via="test")


@pytest.fixture
def context(tmp_path: Path) -> Iterator[FakeContext]:
    context = make_context(tmp_path)
    world(context)
    yield context
    context.operations.shutdown()


@pytest.fixture
def client(context: FakeContext) -> Iterator[TestClient]:
    with TestClient(create_app(context, header_caller)) as client:
        yield client


def test_every_route_has_an_authorization_rule_and_every_rule_a_route(tmp_path: Path) -> None:
    app = create_app(make_context(tmp_path), header_caller)
    routes = [route for route in app.routes if isinstance(route, APIRoute)]
    missing = [
        f"{sorted(route.methods)} {route.path}" for route in routes if rule_of(route) is None
    ]
    assert not missing, f"routes without an authorization rule: {missing}"
    served = {(sorted(route.methods)[0], route.path) for route in routes}
    assert set(RULES) - served == set(), "rules of routes that no longer exist"


def test_a_route_without_a_rule_is_refused(context: FakeContext) -> None:
    app = create_app(context, header_caller)

    @app.get("/v1/unruled")
    def unruled() -> str:
        return "reached"

    with TestClient(app) as client:
        response = client.get("/v1/unruled")
    assert response.status_code == 403
    assert "no authorization rule" in response.json()["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/environments/bob/api"),
        ("POST", "/v1/environments/bob/api/stop"),
        ("DELETE", "/v1/environments/bob/api"),
        ("GET", "/v1/environments/bob/api/snapshots"),
        ("GET", "/v1/environments/bob/api/egress"),
        ("GET", "/v1/environments/bob/api/routes"),
        ("GET", "/v1/users/bob"),
        ("GET", "/v1/environments?user=bob"),
        ("GET", "/v1/routes?user=bob"),
    ],
)
def test_another_tenants_things_are_not_found_for_a_member(
    client: TestClient, method: str, path: str
) -> None:
    response = client.request(method, path, headers=member("alice"))
    assert response.status_code == 404
    # The same sentence as for a user that does not exist: names don't leak.
    assert response.json()["message"] == no_such_user("bob")
    assert client.get("/v1/users/zed").json()["message"] == no_such_user("zed")


def test_a_member_cannot_exec_or_publish_in_another_tenants_environment(
    client: TestClient,
) -> None:
    execute = client.post(
        "/v1/environments/bob/api/exec", json={"command": ["true"]}, headers=member("alice")
    )
    publish = client.post(
        "/v1/environments/bob/api/routes", json={"spec": "tcp://2400:80"}, headers=member("alice")
    )
    assert (execute.status_code, publish.status_code) == (404, 404)
    # Positive control: the same calls on alice's own environment are authorized.
    own = client.post(
        "/v1/environments/alice/web/routes", json={"spec": "tcp://2400:80"}, headers=member("alice")
    )
    assert own.status_code == 201


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/users", {"name": "mallory"}),
        ("GET", "/v1/users", None),
        ("PATCH", "/v1/users/alice", {"cpu": 64}),
        ("PUT", "/v1/users/alice/host-account", {"host_account": "daemon"}),
        ("GET", "/v1/audit", None),
        ("GET", "/v1/backups/repositories", None),
    ],
)
def test_admin_routes_are_forbidden_to_a_member(
    client: TestClient, method: str, path: str, body: object
) -> None:
    response = client.request(method, path, json=body, headers=member("alice"))
    assert response.status_code == 403
    assert response.json()["error"] == "Forbidden"


def test_a_member_lists_only_their_own_environments(client: TestClient) -> None:
    mine = client.get("/v1/environments", headers=member("alice")).json()
    everyone = client.get("/v1/environments").json()
    assert {env["user"] for env in mine} == {"alice"}
    assert {env["user"] for env in everyone} == {"alice", "bob"}


def test_a_member_creates_in_their_own_name_only(client: TestClient) -> None:
    theirs = client.post(
        "/v1/environments", json={"user": "bob", "name": "x"}, headers=member("alice")
    )
    assert theirs.status_code == 404
    own = client.post(
        "/v1/environments", json={"user": "alice", "name": "x"}, headers=member("alice")
    )
    assert own.status_code == 202


def test_another_tenants_operation_is_not_found(client: TestClient) -> None:
    started = client.post("/v1/environments/bob/api/restart").json()["operation"]
    assert client.get(f"/v1/operations/{started}", headers=member("alice")).status_code == 404
    assert client.get(f"/v1/operations/{started}", headers=member("bob")).status_code == 200


def test_the_audit_names_the_principal_not_a_header(
    context: FakeContext, client: TestClient
) -> None:
    client.post(
        "/v1/environments/alice/web/snapshots",
        json={"label": "mine"},
        headers={**member("alice"), "X-Cloche-Actor": "someone-else"},
    )
    event = context.audit.read(limit=1)[0]
    assert (event.actor, event.action) == ("alice", "took snapshot")


def test_admins_act_on_everyone_and_members_on_themselves() -> None:
    authorize(ADMIN, "admin", None)
    authorize(ALICE, "exec", "alice")
    with pytest.raises(NotFound):
        authorize(ALICE, "read", "bob")
    with pytest.raises(Forbidden):
        authorize(ALICE, "admin", "alice")
    with pytest.raises(Forbidden):
        authorize(ALICE, "write", None)
    assert visible_user(ALICE, None) == "alice"
    assert visible_user(ADMIN, None) is None
    with pytest.raises(NotFound):
        visible_user(ALICE, "bob")


def test_socket_callers_are_root_admins_mapped_members_or_refused(context: FakeContext) -> None:
    staff = HostAccount(name="sam", uid=1001, groups=frozenset({"cloche-admin"}))
    plain = HostAccount(name="pat", uid=1002, groups=frozenset({"users"}))
    assert principal_of_account(None, 0, None).is_admin
    assert principal_of_account(staff, 1001, None).is_admin
    with pytest.raises(Unauthenticated, match="--host-account pat"):
        principal_of_account(plain, 1002, None)
    with pytest.raises(Unauthenticated):
        principal_of_account(None, 4242, None)
    context.database.users.set_host_account("alice", "pat")
    mapped = principal_of_account(plain, 1002, context.database.users.by_host_account("pat"))
    assert (mapped.role, mapped.user) == ("member", "alice")


def test_the_real_account_database_names_root(context: FakeContext) -> None:
    principal = principal_of_peer(context, 0)
    assert (principal.name, principal.role) == ("root", "admin")


def test_a_host_account_maps_to_one_user_only(context: FakeContext) -> None:
    context.database.users.set_host_account("alice", "pat")
    with pytest.raises(Exception, match="already belongs to user 'alice'"):
        context.database.users.set_host_account("bob", "pat")
    context.database.users.set_host_account("alice", None)
    context.database.users.set_host_account("bob", "pat")
    assert context.database.users.get("bob").host_account == "pat"


def test_a_bad_host_account_name_is_refused_in_one_sentence(client: TestClient) -> None:
    response = client.put("/v1/users/alice/host-account", json={"host_account": "pat\nx"})
    assert response.status_code == 422
    assert "not valid" in response.json()["message"]


def test_the_peer_uid_of_a_unix_socket_is_the_kernels_word() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left, right:
        import os

        assert peer_uid(left) == os.getuid()
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with tcp:
        assert peer_uid(tcp) is None


def test_an_operation_target_names_its_owner() -> None:
    assert operation_owner("alice/web") == "alice"
    assert operation_owner("alice") is None
    assert operation_owner("Not A User/x") is None


def test_a_member_sees_its_own_sandbox_after_creating_it(context: FakeContext) -> None:
    create(context, "alice", "sandbox")
    with TestClient(create_app(context, header_caller)) as client:
        info = client.get("/v1/environments/alice/sandbox", headers=member("alice"))
    assert info.status_code == 200


def test_a_member_cannot_widen_egress_past_the_ceiling_an_admin_set(
    context: FakeContext, client: TestClient
) -> None:
    assert client.patch("/v1/users/alice", json={"max_egress": "allow"}).status_code == 200
    egress = "/v1/environments/alice/web/egress"
    wider = client.patch(egress, json={"egress": "open"}, headers=member("alice"))
    assert wider.status_code == 403
    assert "ceiling 'allow'" in wider.json()["message"]
    # Positive controls: within the ceiling the member's change goes through, and an admin may
    # set anything.
    within = client.patch(egress, json={"egress": "allow:10.0.0.0/8"}, headers=member("alice"))
    assert within.status_code == 200
    assert client.patch(egress, json={"egress": "open"}).status_code == 200


def test_a_new_environment_starts_within_its_owners_ceiling(context: FakeContext) -> None:
    context.database.users.set_max_egress("alice", "none")
    create(context, "alice", "quiet")
    assert context.database.environments.get("alice", "quiet").egress == "none"
    create(context, "bob", "loud")
    assert context.database.environments.get("bob", "loud").egress == "open"
