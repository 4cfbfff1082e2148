"""cloche.Client: the typed Python client of the cloche daemon's API."""

from __future__ import annotations

import httpx

from cloche.client.audit import AuditLog
from cloche.client.backups import Backups
from cloche.client.connection import DEFAULT_TIMEOUT, Connection, path_of
from cloche.client.environments import Environments
from cloche.client.host import Bans
from cloche.client.network import EgressPolicies, Routes
from cloche.client.operations import Operations
from cloche.client.snapshots import Snapshots
from cloche.client.tokens import Tokens
from cloche.client.users import Keys, Users
from cloche.wire import Health


class Client:
    """The daemon's API by resource; every answer is a model of cloche.wire.

    It talks to the local daemon's unix socket (CLOCHE_SOCKET, else /run/cloche/cloche.sock)
    unless socket_path or an httpx client (for example a test client of the app) is given.
    Failures raise the project's errors (NotFound, Conflict, Invalid, QuotaExceeded,
    HostFailure) with the daemon's one-sentence message.
    """

    def __init__(
        self,
        socket_path: str | None = None,
        *,
        http: httpx.Client | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        token: str | None = None,
    ) -> None:
        self._connection = Connection(socket_path, http=http, timeout=timeout, token=token)
        connection = self._connection
        self.operations = Operations(connection)
        self.environments = Environments(connection, self.operations)
        self.users = Users(connection, self.operations)
        self.keys = Keys(connection, self.operations)
        self.snapshots = Snapshots(connection, self.operations)
        self.routes = Routes(connection, self.operations)
        self.egress = EgressPolicies(connection, self.operations)
        self.backups = Backups(connection, self.operations)
        self.audit = AuditLog(connection, self.operations)
        self.bans = Bans(connection, self.operations)
        self.tokens = Tokens(connection, self.operations)

    def health(self) -> Health:
        """The daemon's version and the fingerprints of its code and config."""
        return self._connection.fetch(Health, "GET", path_of("health"))

    def close(self) -> None:
        """Close the connection (an httpx client handed in stays open)."""
        self._connection.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
