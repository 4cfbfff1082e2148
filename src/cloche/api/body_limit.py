"""A request body limit as pure ASGI middleware: 413 and one sentence, chunked bodies too."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

MIB = 1024 * 1024
DEFAULT_LIMIT = 1 * MIB
# exec carries its stdin as base64 in the JSON body until exec streams: room for 24 MiB of it.
EXEC_LIMIT = 32 * MIB


def limit_for(path: str, default: int = DEFAULT_LIMIT) -> int:
    """The body limit of the route at path."""
    return EXEC_LIMIT if path.endswith("/exec") else default


def _size(limit: int) -> str:
    return f"{limit // MIB} MiB" if limit % MIB == 0 else f"{limit} bytes"


class BodyLimit:
    """Refuses a request whose body is over its route's limit before the app sees any of it.

    A declared Content-Length over the limit is refused unread; a body without one (chunked) is
    read up to the limit and refused as soon as it passes it. The body is read whole before the
    app runs, so a refused request has no effect at all.
    """

    def __init__(self, app: Asgi, limit: int = DEFAULT_LIMIT) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(str(scope.get("path", "")), self.limit)
        declared = _content_length(scope)
        if declared == -1:
            await _refuse(send, 400, "The Content-Length header is not a number; send a valid one.")
            return
        if declared is not None and declared > limit:
            await _refuse(send, 413, _too_large(limit))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away: nothing to answer.
                return
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > limit:
                await _refuse(send, 413, _too_large(limit))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)


def _content_length(scope: Scope) -> int | None:
    """The declared length; None when there is none, -1 when it is not a number."""
    for name, value in scope.get("headers", []):
        if bytes(name).lower() == b"content-length":
            text = bytes(value).strip()
            return int(text) if text.isdigit() else -1
    return None


def _too_large(limit: int) -> str:
    return f"The request body is over the limit of {_size(limit)}; send a smaller one."


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the app the body already read, then the client's later messages."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": "Invalid", "message": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        # The rest of the body is never read, so the connection cannot carry another request.
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
