"""The HTTP protocol of the daemon's socket: each request carries its caller's uid (SO_PEERCRED)."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from cloche.api.authorization import PEER_UID

# struct ucred: pid, uid, gid (each a 32-bit int on Linux).
_UCRED = struct.Struct("3i")


def peer_uid(connection: socket.socket) -> int | None:
    """The uid of the process on the other end of a unix socket, or None (not a unix socket)."""
    if connection.family != socket.AF_UNIX:
        return None
    raw = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    _pid, uid, _gid = _UCRED.unpack(raw)
    return int(uid)


class WithPeer:
    """An ASGI app that adds the connection's peer uid to each request's scope."""

    def __init__(self, app: Any, uid: int | None) -> None:
        self._app = app
        self._uid = uid

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope = dict(scope)
        # The kernel's word for who connected; nothing the client sends can set it.
        scope[PEER_UID] = self._uid
        await self._app(scope, receive, send)


class PeerCredentialsProtocol(H11Protocol):
    """uvicorn's h11 protocol, reading the peer's credentials once per connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Remember who connected, then serve the connection as usual."""
        super().connection_made(transport)
        connection = transport.get_extra_info("socket")
        uid = peer_uid(connection) if connection is not None else None
        self.app = WithPeer(self.app, uid)
