"""Bad input at the API: the body limit (pure ASGI, then the served app), keys and ssh-config."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from cloche.api.app import create_app
from cloche.api.body_limit import EXEC_LIMIT, MIB, BodyLimit, Message, Receive, Scope, Send
from tests.unit.callers import header_caller
from tests.unit.fakes import FakeContext, TestClient, public_key
from tests.unit.served import ACTOR


class Echo:
    """An ASGI app that answers with the body it read, and remembers being called."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


def call(
    middleware: BodyLimit,
    chunks: list[bytes],
    *,
    path: str = "/v1/users",
    length: str | None = None,
) -> tuple[list[Message], int]:
    """Run one request through middleware; its sent messages and how many chunks it read."""
    headers = [] if length is None else [(b"content-length", length.encode())]
    scope: Scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    pending = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]
    read = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal read
        read += 1
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    return sent, read


def answer(sent: list[Message]) -> tuple[int, dict[str, Any]]:
    """The status and the JSON body of what was sent."""
    return sent[0]["status"], json.loads(sent[1]["body"])


def test_a_body_within_the_limit_reaches_the_app_whole() -> None:
    app = Echo()
    sent, _ = call(BodyLimit(app, limit=10), [b"abc", b"defg", b"hij"])
    assert (sent[0]["status"], sent[1]["body"]) == (200, b"abcdefghij")
    assert app.calls == 1


def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    app = Echo()
    sent, read = call(BodyLimit(app, limit=10), [b"x" * 11], length="11")
    status, body = answer(sent)
    assert status == 413
    assert body == {
        "error": "Invalid",
        "message": "The request body is over the limit of 10 bytes; send a smaller one.",
    }
    assert (read, app.calls) == (0, 0)
    assert (b"connection", b"close") in sent[0]["headers"]


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit() -> None:
    app = Echo()
    chunks = [b"x" * MIB] + [b"y" * MIB] * 50
    sent, read = call(BodyLimit(app), chunks)
    assert answer(sent)[0] == 413
    assert "over the limit of 1 MiB" in answer(sent)[1]["message"]
    # Refused at the second chunk: the other 49 MiB are never read, the app never runs.
    assert (read, app.calls) == (2, 0)


def test_a_lying_content_length_is_caught_by_counting() -> None:
    app = Echo()
    sent, _ = call(BodyLimit(app, limit=10), [b"x" * 5, b"x" * 6], length="5")
    assert answer(sent)[0] == 413
    assert app.calls == 0


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", ""])
def test_a_content_length_that_is_not_a_number_is_refused(length: str) -> None:
    app = Echo()
    sent, _ = call(BodyLimit(app, limit=10), [b"x"], length=length)
    assert answer(sent)[0] == 400
    assert app.calls == 0


def test_exec_has_room_for_its_stdin() -> None:
    app = Echo()
    sent, _ = call(BodyLimit(app), [b"x" * (2 * MIB)], path="/v1/environments/a/b/exec")
    assert sent[0]["status"] == 200
    sent, _ = call(BodyLimit(app), [b"x" * (EXEC_LIMIT + 1)], path="/v1/environments/a/b/exec")
    assert sent[0]["status"] == 413


def test_a_client_that_leaves_mid_body_gets_no_answer_and_the_app_never_runs() -> None:
    app = Echo()
    middleware = BodyLimit(app, limit=100)
    scope: Scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    messages = [{"type": "http.request", "body": b"ab", "more_body": True}]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    assert (sent, app.calls) == ([], 0)


def test_other_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        pass

    asyncio.run(BodyLimit(app)({"type": "lifespan"}, receive, send))
    assert seen == ["lifespan"]


# The served app ------------------------------------------------------------------------------


@pytest.fixture
def client(served_world: FakeContext) -> Iterator[TestClient]:
    app = create_app(served_world, header_caller)
    with TestClient(app, headers={"X-Test-Admin": ACTOR}) as client:
        yield client


def _one_sentence(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message"}
    message: str = body["message"]
    assert "\n" not in message
    assert message.endswith(".")
    return message


def test_the_served_app_refuses_a_huge_body_and_a_huge_chunked_body(client: TestClient) -> None:
    huge = json.dumps({"name": "zed", "ssh_keys": ["x" * (2 * MIB)]}).encode()
    _one_sentence(client.post("/v1/users", content=huge), 413)
    chunked = client.post("/v1/users", content=iter([huge[:MIB], huge[MIB:]]))
    _one_sentence(chunked, 413)
    assert client.get("/v1/users/zed").status_code == 404


def test_a_key_with_a_line_break_is_refused_and_the_user_keeps_working(client: TestClient) -> None:
    poisoned = f"{public_key('rsa3072')} me\n{public_key('ed25519')}"
    message = _one_sentence(client.post("/v1/users/alice/keys", json={"public_key": poisoned}), 422)
    assert "spans several lines" in message
    batch = {"public_keys": [public_key("rsa3072"), poisoned]}
    message = _one_sentence(client.post("/v1/users/alice/keys/batch", json=batch), 422)
    assert message.startswith("Key 2 of 2: The SSH public key spans several lines")
    # Nothing was added, and every later render still works.
    shown = client.get("/v1/users/alice").json()
    assert len(shown["ssh_keys"]) == 1
    assert client.post(
        "/v1/users/alice/keys", json={"public_key": public_key("rsa3072")}
    ).is_success
    params = {"known_hosts_path": "/home/alice/.ssh/known_hosts"}
    assert client.get("/v1/users/alice/ssh-config", params=params).is_success


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("host", "h.example\nProxyCommand touch /tmp/pwned"),
        ("host", "fe80::1%lo\nProxyCommand x"),
        ("host", "h.example\u2028x"),
        ("known_hosts_path", "/k\nProxyCommand touch /tmp/pwned"),
        ("port", "0"),
    ],
)
def test_ssh_config_refuses_a_value_that_would_inject_a_directive(
    client: TestClient, param: str, value: str
) -> None:
    params = {"known_hosts_path": "/home/alice/.ssh/known_hosts", param: value}
    response = client.get("/v1/users/alice/ssh-config", params=params)
    _one_sentence(response, 422)
    assert "config" not in response.json()


@pytest.mark.parametrize(
    "field",
    [
        {"password": "hunter\x002"},
        {"password": "one\ntwo"},
        {"url": "sftp:b@10.0.0.6:/srv", "sftp_command": "ssh b@10.0.0.6 -s sftp\nx"},
        {"url": "s3:http://10.0.0.5:9000/c", "s3_access_key": "a\x00", "s3_secret_key": "s"},
        {"url": "/srv/backups\x00x"},
    ],
)
def test_a_backup_secret_or_url_with_a_control_character_is_refused(
    client: TestClient, field: dict[str, str]
) -> None:
    body = {"name": "spare", "url": "/srv/backups", "password": "hunter2", **field}
    message = _one_sentence(client.post("/v1/backups/repositories", json=body), 422)
    assert "hunter" not in message
    assert (
        client.get("/v1/backups/repositories").json()
        == client.get("/v1/backups/repositories").json()
    )
    assert "spare" not in client.get("/v1/backups/repositories").text
