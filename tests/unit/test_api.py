"""The HTTP API on fake-backed core: status codes, error bodies, operations, health, OpenAPI."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from cloche import __version__
from cloche.api.app import create_app
from cloche.api.authorization import RULES, Rule
from cloche.model.build import code_fingerprint
from cloche.model.errors import (
    ClocheError,
    Conflict,
    HostFailure,
    Invalid,
    NotFound,
    QuotaExceeded,
)
from cloche.model.errors_wire import ERROR_CLASSES, error_body, error_from_body
from cloche.model.instances import BootFailure
from cloche.model.routes import RouteError
from tests.unit.callers import header_caller
from tests.unit.fakes import FakeContext, TestClient, events, fake_context, public_key

ACTOR = {"X-Test-Admin": "carol"}


@pytest.fixture
def context(tmp_path: Path) -> Iterator[FakeContext]:
    with fake_context(tmp_path) as context:
        yield context


@pytest.fixture
def app(context: FakeContext) -> FastAPI:
    return create_app(context, header_caller)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def add_alice(client: TestClient, **quota: Any) -> None:
    body = {"name": "alice", "ssh_keys": [public_key("ed25519")], "cpu": 4, **quota}
    response = client.post("/v1/users", json=body, headers=ACTOR)
    assert response.status_code == 201, response.text


def wait(client: TestClient, operation_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while True:
        response = client.get(f"/v1/operations/{operation_id}")
        assert response.status_code == 200
        operation: dict[str, Any] = response.json()
        if operation["status"] != "running":
            return operation
        assert time.monotonic() < deadline, operation
        time.sleep(0.005)


def is_one_sentence(message: str) -> bool:
    """One line, ending in a full stop, with no full stop before its end."""
    return "\n" not in message and message.endswith(".") and "." not in message[:-1]


def assert_error(response: Any, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == kind
    message: str = body["message"]
    assert message.strip()
    assert message.endswith(".")
    return message


# Errors ----------------------------------------------------------------------------------------


def test_invalid_maps_to_422(client: TestClient) -> None:
    message = assert_error(client.get("/v1/users/Not_A_Name"), 422, "Invalid")
    assert "Not_A_Name" in message


def test_not_found_maps_to_404(client: TestClient) -> None:
    message = assert_error(client.get("/v1/users/zoe"), 404, "NotFound")
    assert "zoe" in message


def test_conflict_maps_to_409(client: TestClient) -> None:
    add_alice(client)
    body = {"name": "alice", "ssh_keys": [public_key("ecdsa")]}
    message = assert_error(client.post("/v1/users", json=body), 409, "Conflict")
    assert "already exists" in message


def test_quota_exceeded_maps_to_403(client: TestClient, context: FakeContext) -> None:
    add_alice(client, cpu=2)
    response = client.post("/v1/environments", json={"user": "alice", "name": "web", "cpu": 3})
    message = assert_error(response, 403, "QuotaExceeded")
    assert "CPUs" in message
    assert context.database.environments.count("alice") == 0


def test_host_failure_maps_to_502(client: TestClient, context: FakeContext) -> None:
    context.fake.fail["ensure_profiles"] = HostFailure("LXD refused the profile; check LXD.")
    body = {"name": "alice", "ssh_keys": [public_key("ed25519")]}
    message = assert_error(client.post("/v1/users", json=body), 502, "HostFailure")
    assert message == "LXD refused the profile; check LXD."


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (Invalid("Bad input; fix it."), 422, "Invalid"),
        (NotFound("No such thing; check the name."), 404, "NotFound"),
        (Conflict("It exists; pick another name."), 409, "Conflict"),
        (QuotaExceeded("Over the quota; ask for less."), 403, "QuotaExceeded"),
        (HostFailure("LXD failed; check LXD."), 502, "HostFailure"),
        # Subclasses travel as the class clients know.
        (BootFailure("It did not boot; read the console.", "tail"), 502, "HostFailure"),
        (RouteError("ftp://x", 0, "unknown scheme", "use https://"), 422, "Invalid"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, ClocheError) else str(value),
)
def test_every_error_class_maps_in_one_place(
    app: FastAPI, error: ClocheError, status: int, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(RULES, ("GET", "/test/raise"), Rule("read", "anyone"))

    @app.get("/test/raise")
    def raise_it() -> None:
        raise error

    with TestClient(app) as client:
        response = client.get("/test/raise")
    assert response.status_code == status
    assert response.json() == {"error": kind, "message": str(error)}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(
            {"user": "alice", "name": "web", "memory": "lots"},
            "memory",
            id="bad-size",
        ),
        pytest.param({"user": "alice", "name": "web", "colour": "red"}, "colour", id="unknown"),
        pytest.param({"name": "web"}, "user", id="missing"),
        pytest.param({"user": "alice", "name": "web", "cpu": 0}, "cpu", id="too-small"),
        pytest.param({"user": "alice", "name": "web", "profile": "x"}, "profile", id="choice"),
    ],
)
def test_validation_errors_are_invalid_in_one_sentence(
    client: TestClient, context: FakeContext, body: dict[str, Any], field: str
) -> None:
    message = assert_error(client.post("/v1/environments", json=body), 422, "Invalid")
    assert message.startswith(f"{field}: ")
    assert "Value error" not in message
    assert is_one_sentence(message), message
    assert context.fake.calls == []


def test_unknown_path_is_not_found(client: TestClient) -> None:
    message = assert_error(client.get("/v1/nothing/here"), 404, "NotFound")
    assert "/v1/nothing/here" in message


# Operations, health, OpenAPI -------------------------------------------------------------------


def test_create_environment_returns_an_operation_that_succeeds(
    client: TestClient, context: FakeContext
) -> None:
    add_alice(client)

    response = client.post("/v1/environments", json={"user": "alice", "name": "web"}, headers=ACTOR)

    assert response.status_code == 202
    operation_id = response.json()["operation"]
    assert re.fullmatch(r"[0-9a-f-]{36}", operation_id)
    operation = wait(client, operation_id)
    assert operation["status"] == "succeeded"
    assert operation["error"] is None
    assert operation["kind"] == "create environment"
    assert operation["target"] == "alice/web"
    assert operation["finished_at"] is not None
    shown = client.get("/v1/environments/alice/web").json()
    assert shown["status"] == "ready"
    assert shown["state"] == "Running"
    assert shown["address"] == context.fake.instances["cloche-alice"]["web"].ipv4
    assert [e.actor for e in events(context, "created environment")] == ["carol"]
    listed = client.get("/v1/environments", params={"user": "alice"}).json()
    assert [env["name"] for env in listed] == ["web"]


def test_failed_operation_carries_the_error_body(client: TestClient, context: FakeContext) -> None:
    add_alice(client)
    context.fake.fail_boot = True

    response = client.post("/v1/environments", json={"user": "alice", "name": "web"})

    operation = wait(client, response.json()["operation"])
    assert operation["status"] == "failed"
    assert operation["error"]["error"] == "HostFailure"
    assert "stopped while booting" in operation["error"]["message"]


def test_unknown_operation_is_not_found(client: TestClient) -> None:
    assert_error(client.get("/v1/operations/0000"), 404, "NotFound")


def test_health_reports_version_and_code(client: TestClient) -> None:
    response = client.get("/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == __version__
    assert body["code"] == code_fingerprint()
    assert body["status"] == "ok"


def test_openapi_document_lists_the_routes(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["version"] == __version__
    assert "/v1/environments" in document["paths"]
    assert "post" in document["paths"]["/v1/environments"]
    assert "/v1/users" in document["paths"]


def test_audit_is_served_and_verifies(client: TestClient) -> None:
    add_alice(client)
    events_shown = client.get("/v1/audit").json()
    assert [(e["action"], e["actor"]) for e in events_shown] == [("added user", "carol")]
    assert client.get("/v1/audit/verify").json()["ok"] is True


# The wire format -------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [Invalid, NotFound, Conflict, QuotaExceeded, HostFailure])
def test_error_body_round_trips(cls: type[ClocheError]) -> None:
    error = cls("Something is wrong; do this.")
    rebuilt = error_from_body(cls.http_status, error_body(error))
    assert type(rebuilt) is cls
    assert str(rebuilt) == str(error)


def test_every_error_class_is_on_the_wire() -> None:
    assert set(ERROR_CLASSES) == {
        "Invalid",
        "NotFound",
        "Conflict",
        "QuotaExceeded",
        "Forbidden",
        "Unauthenticated",
        "HostFailure",
    }


@pytest.mark.parametrize(
    "body",
    [None, "text", {"error": "Invalid"}, {"message": 3}],
)
def test_unexplained_bodies_become_host_failures(body: object) -> None:
    rebuilt = error_from_body(500, body)
    assert type(rebuilt) is HostFailure
    assert "500" in str(rebuilt)


def test_unknown_error_names_become_host_failures() -> None:
    rebuilt = error_from_body(500, {"error": "Exploded", "message": "It broke; retry."})
    assert type(rebuilt) is HostFailure
    assert str(rebuilt) == "It broke; retry."


# Values the API fuzz found that once answered 500 ----------------------------------------------


def test_stdin_that_is_not_base64_is_invalid_not_a_crash(client: TestClient) -> None:
    add_alice(client)
    created = client.post("/v1/environments", json={"user": "alice", "name": "web"})
    assert wait(client, created.json()["operation"])["status"] == "succeeded"
    body = {"command": ["cat"], "stdin_base64": "abc"}
    response = client.post("/v1/environments/alice/web/exec", json=body)
    assert "stdin_base64 is not valid base64" in assert_error(response, 422, "Invalid")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/users", {"name": "bob", "ssh_keys": [public_key("ecdsa")]}),
        ("PATCH", "/v1/users/alice", {}),
    ],
)
def test_a_size_beyond_what_sqlite_holds_is_invalid_not_a_crash(
    client: TestClient, method: str, path: str, body: dict[str, Any]
) -> None:
    add_alice(client)
    huge = {**body, "memory": "100000000000000000000TiB"}
    response = client.request(method, path, json=huge)
    assert "larger than cloche can hold" in assert_error(response, 422, "Invalid")


@pytest.mark.parametrize("port", ["0", "-22", "65536", "99999999999999999999"])
def test_an_ssh_config_port_outside_1_to_65535_is_invalid(client: TestClient, port: str) -> None:
    add_alice(client)
    query = {"known_hosts_path": "/tmp/known", "host": "cloche.example.test", "port": port}
    response = client.get("/v1/users/alice/ssh-config", params=query)
    assert "The SSH port" in assert_error(response, 422, "Invalid")
