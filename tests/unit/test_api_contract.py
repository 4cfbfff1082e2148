"""The wire contract: every route declares its body and error models, and answers what they say."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter
from starlette.routing import Match

from cloche.api.app import create_app
from cloche.core import backup_repositories
from cloche.model.config import parse_config
from cloche.model.errors import HostFailure
from cloche.wire import ErrorBody
from tests.unit.callers import header_caller
from tests.unit.fakes import (
    FakeContext,
    TestClient,
    ban_for_an_hour,
    fake_context,
    public_key,
    wait_operation,
)

# Routes that answer without a body, each with the reason.
NO_BODY = {("DELETE", "/v1/backups/repositories/{name}"): "204: the repository is forgotten"}
ACTOR = {"X-Test-Admin": "carol"}
CONFIG = parse_config({"firewall": {"mode": "protect"}, "proxy": {"tls": "internal"}})


def api_routes(app: FastAPI) -> list[APIRoute]:
    """The API's own routes (not FastAPI's /docs and /openapi.json)."""
    return [route for route in app.routes if isinstance(route, APIRoute)]


def operations(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path template) the API serves."""
    return sorted(
        (method, route.path_format) for route in api_routes(app) for method in route.methods
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def context(tmp_path: Path) -> Iterator[FakeContext]:
    with fake_context(tmp_path, CONFIG) as context:
        backup_repositories.ensure_local_repository(
            context.state_dir, context.host.secrets, context.host.restic, context.host.backup_files
        )
        yield context


@pytest.fixture
def app(context: FakeContext) -> FastAPI:
    return create_app(context, header_caller)


# Every route declares its models ---------------------------------------------------------------


def test_every_route_declares_a_response_model(app: FastAPI) -> None:
    missing = [
        (method, route.path_format)
        for route in api_routes(app)
        for method in route.methods
        if route.response_model is None and (method, route.path_format) not in NO_BODY
    ]
    assert missing == [], f"routes without a response model: {missing}"
    for key in NO_BODY:
        assert key in operations(app), f"{key} is listed in NO_BODY but is no route"


def _fields_of(model: Any) -> Iterator[tuple[type[BaseModel], str, bool]]:
    """(model, field, required) for every wire model reachable from a response annotation."""
    schema_models: list[type[BaseModel]] = []

    def collect(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in schema_models:
                schema_models.append(annotation)
                for field in annotation.model_fields.values():
                    collect(field.annotation)
            return
        for argument in getattr(annotation, "__args__", ()):
            collect(argument)
        for argument in getattr(annotation, "__metadata__", ()):
            collect(argument)
        origin = getattr(annotation, "__origin__", None)
        if origin is not None and origin is not annotation:
            collect(origin)

    collect(model)
    for each in schema_models:
        for name, field in each.model_fields.items():
            yield each, name, field.is_required()


def test_response_models_refuse_extra_fields_and_require_every_field(app: FastAPI) -> None:
    for route in api_routes(app):
        if route.response_model is None:
            continue
        for model, name, required in _fields_of(route.response_model):
            assert model.model_config.get("extra") == "forbid", f"{model.__name__} allows extras"
            # A default would let a body that lacks the field pass validation.
            assert required, f"{model.__name__}.{name} ({route.path}) has a default"


def test_every_route_documents_its_error_bodies(app: FastAPI) -> None:
    for route in api_routes(app):
        assert "5XX" in route.responses, f"{route.path} does not document 5XX"
        has_parameters = bool(route.dependant.path_params or route.dependant.query_params)
        if has_parameters or route.body_field is not None:
            assert 422 in route.responses, f"{route.path} does not document 422"
        if route.dependant.path_params:
            assert 404 in route.responses, f"{route.path} does not document 404"
        for status, response in route.responses.items():
            assert response["model"] is ErrorBody, f"{route.path} {status}"


# The OpenAPI document describes every body -----------------------------------------------------


def test_the_openapi_document_has_a_schema_for_every_response(app: FastAPI) -> None:
    with TestClient(app) as client:
        document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # 422 is the error body, not FastAPI's
    seen = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            seen.append((method.upper(), path))
            responses = operation["responses"]
            successes = [status for status in responses if status.startswith("2")]
            assert len(successes) == 1, (method, path, responses)
            [success] = successes
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, status)
            if (method.upper(), path) in NO_BODY:
                assert success == "204"
                continue
            assert responses[success]["content"]["application/json"]["schema"], (method, path)
    assert sorted(seen) == operations(app)


# Every body a route answers is what its model says ---------------------------------------------


class Contract:
    """Calls routes and validates each body strictly against the model its route declares."""

    def __init__(self, app: FastAPI, client: TestClient, context: FakeContext) -> None:
        self.app, self.client, self.context = app, client, context
        self.called: set[tuple[str, str]] = set()

    def _route(self, method: str, path: str) -> APIRoute:
        scope = {"type": "http", "method": method, "path": path}
        for route in api_routes(self.app):
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route
        raise AssertionError(f"no route serves {method} {path}")

    def __call__(self, method: str, path: str, status: int = 200, **options: Any) -> Any:
        response = self.client.request(method, path, headers=ACTOR, **options)
        assert response.status_code == status, (method, path, response.text)
        route = self._route(method, path)
        self.called.add((method, route.path_format))
        if route.response_model is None:
            assert response.content == b""
            return None
        adapter: TypeAdapter[Any] = TypeAdapter(route.response_model)
        body = adapter.validate_json(response.content, strict=True)
        assert adapter.dump_python(body, mode="json") == response.json()
        return response.json()

    def wait(self, answer: dict[str, Any], status: str = "succeeded") -> dict[str, Any]:
        """Wait for the operation of a 202 answer; its body, validated."""
        wait_operation(self.context, answer["operation"])
        operation: dict[str, Any] = self("GET", f"/v1/operations/{answer['operation']}")
        assert operation["status"] == status, operation["error"]
        return operation


def test_every_route_answers_what_its_model_describes(app: FastAPI, context: FakeContext) -> None:
    with TestClient(app) as client:
        call = Contract(app, client, context)
        base = "/v1/environments/alice/web"
        port = _free_port()

        user = {"name": "alice", "ssh_keys": [public_key("ed25519")], "cpu": 8, "max_envs": 6}
        call("POST", "/v1/users", 201, json=user)
        call("POST", "/v1/users/alice/keys", 201, json={"public_key": public_key("ecdsa")})
        batch = {"public_keys": [public_key("rsa3072")]}
        call("POST", "/v1/users/alice/keys/batch", 201, json=batch)
        call("PATCH", "/v1/users/alice", json={"memory": "16GiB"})
        call("PUT", "/v1/users/alice/host-account", json={"host_account": "alice"})
        for name in ("web", "db"):
            call.wait(call("POST", "/v1/environments", 202, json={"user": "alice", "name": name}))
        call("PATCH", base, json={"cpu": 2})
        call("POST", f"{base}/exec", json={"command": ["id"], "stdin_base64": "aGk="})
        call("POST", f"{base}/snapshots", 201, json={"label": "before"})
        call("PATCH", f"{base}/snapshot-policy", json={"hourly": 48})
        call("POST", f"{base}/routes", 201, json={"spec": f"tcp://{port}:22"})
        call("POST", f"{base}/routes", 201, json={"spec": "https://app.test"})
        call("PATCH", f"{base}/egress", json={"egress": "none"})
        call.wait(call("POST", "/v1/backups", 202, json={"user": "alice", "name": "web"}))
        offsite = {"name": "offsite", "url": "s3:http://10.0.0.5:9000/cloche", "password": "pw"}
        call("POST", "/v1/backups/repositories", 201, json=offsite)
        call("POST", "/v1/backups/check", json={})
        context.fake.fail["start"] = HostFailure("LXD refused to start 'db'; check LXD.")
        failed = call.wait(call("POST", "/v1/environments/alice/db/start", 202), "failed")
        assert failed["error"]["error"] == "HostFailure"
        del context.fake.fail["start"]
        for action in ("stop", "restart"):
            call.wait(call("POST", f"{base}/{action}", 202))

        call("GET", "/v1/health")
        call("GET", "/v1/users")
        shown = call("GET", "/v1/users/alice")
        call("GET", "/v1/users/alice/ssh-config", params={"known_hosts_path": "/tmp/kh"})
        call("GET", "/v1/environments")
        call("GET", "/v1/environments", params={"user": "alice"})
        assert sorted(call("GET", base)["routes"]) == ["https://app.test", f"tcp://{port}:22"]
        call("GET", f"{base}/snapshots")
        call("GET", f"{base}/snapshot-policy")
        assert {route["kind"] for route in call("GET", "/v1/routes")} == {"tcp", "https"}
        call("GET", f"{base}/routes")
        call("GET", f"{base}/egress")
        [backup] = call("GET", "/v1/backups")
        call("GET", "/v1/backups/repositories")
        call("GET", "/v1/audit", params={"limit": 500})
        call("GET", "/v1/audit/verify")
        ban_for_an_hour(context, "2001:db8::7")
        [ban] = call("GET", "/v1/host/bans")
        assert call("DELETE", f"/v1/host/bans/{ban['address']}") == ban
        made = call("POST", "/v1/tokens", 201, json={"user": "alice", "scopes": ["read"]})
        assert call("GET", "/v1/tokens") == [made["token"]]
        assert call("DELETE", f"/v1/tokens/{made['token']['id']}")["revoked"] is True

        call("DELETE", f"{base}/routes", params={"spec": "https://app.test"})
        call.wait(call("POST", f"{base}/snapshots/before/restore", 202, json={}))
        call.wait(call("POST", f"{base}/snapshots/before/restore", 202, json={"as_new": "copy"}))
        call("DELETE", f"{base}/snapshots/before")
        call.wait(call("POST", f"/v1/backups/{backup['id']}/restore", 202, json={"as_new": "old"}))
        call.wait(call("POST", "/v1/backups/forget", 202, json={}))
        call.wait(call("DELETE", f"/v1/backups/{backup['id']}", 202))
        call("DELETE", "/v1/backups/repositories/offsite", 204)
        ecdsa = shown["ssh_keys"][-1]
        call("DELETE", f"/v1/users/alice/keys/{ecdsa['fingerprint']}")
        call.wait(call("DELETE", "/v1/environments/alice/db", 202))
        call.wait(call("DELETE", "/v1/users/alice", 202, params={"purge": True}))

    # Every route, not only the GETs: a new route fails here until this test calls it.
    assert call.called == set(operations(app))
