"""The typed Python client of the cloche daemon: `Client`, its resources, the errors it raises.

Its answers are the models of cloche.wire; see docs/client.md.
"""

from cloche.client.audit import AuditLog
from cloche.client.backups import BackupRepositories, Backups
from cloche.client.client import Client
from cloche.client.connection import DEFAULT_SOCKET, default_socket
from cloche.client.environments import Environments
from cloche.client.host import Bans
from cloche.client.network import EgressPolicies, Routes
from cloche.client.operations import OperationHandle, Operations
from cloche.client.snapshots import Snapshots
from cloche.client.tokens import Tokens
from cloche.client.users import Keys, Users
from cloche.model.errors import (
    ClocheError,
    Conflict,
    Forbidden,
    HostFailure,
    Invalid,
    NotFound,
    QuotaExceeded,
    Unauthenticated,
)

__all__ = [
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
]
