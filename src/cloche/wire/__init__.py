"""The cloche API's wire contract: a pydantic model for every request and response body.

The api serves these and the client parses them; both import this package, which imports only
cloche.model. Every model refuses fields it does not describe.
"""

from cloche.model.routes import RouteKind
from cloche.wire.audit import AuditEvent, AuditVerification
from cloche.wire.backups import (
    AddRepository,
    ApplyRetention,
    Backup,
    CheckRepository,
    Repository,
    RepositoryAdded,
    RepositoryChecked,
    RepositoryKind,
    RestoreBackup,
    RunBackup,
)
from cloche.wire.base import WireModel
from cloche.wire.environments import (
    CreateEnvironment,
    Environment,
    EnvironmentInfo,
    Limits,
    Resize,
)
from cloche.wire.errors import ErrorBody, ErrorKind
from cloche.wire.exec import ExecRequest, ExecResult
from cloche.wire.health import Health
from cloche.wire.host import Ban
from cloche.wire.network import Egress, EgressChanged, SetEgress
from cloche.wire.operations import Operation, OperationAccepted
from cloche.wire.routes import (
    HttpRoute,
    PortRoute,
    Publish,
    PublishedHttpRoute,
    PublishedPortRoute,
    PublishedRoute,
    Route,
    RouteRemoved,
)
from cloche.wire.snapshots import (
    RestoreSnapshot,
    RetentionCounts,
    SetSnapshotPolicy,
    Snapshot,
    SnapshotPolicy,
    SnapshotRemoved,
    TakeSnapshot,
)
from cloche.wire.ssh import SshConfig
from cloche.wire.tokens import CreateToken, Token, TokenCreated
from cloche.wire.users import (
    CreateUser,
    HostAccountRequest,
    Key,
    KeyAdded,
    KeyPush,
    KeyRemoved,
    KeyRequest,
    KeysRequest,
    SetQuota,
    User,
    UserDetail,
)

__all__ = [
    "AddRepository",
    "ApplyRetention",
    "AuditEvent",
    "AuditVerification",
    "Backup",
    "Ban",
    "CheckRepository",
    "CreateEnvironment",
    "CreateToken",
    "CreateUser",
    "Egress",
    "EgressChanged",
    "Environment",
    "EnvironmentInfo",
    "ErrorBody",
    "ErrorKind",
    "ExecRequest",
    "ExecResult",
    "Health",
    "HostAccountRequest",
    "HttpRoute",
    "Key",
    "KeyAdded",
    "KeyPush",
    "KeyRemoved",
    "KeyRequest",
    "KeysRequest",
    "Limits",
    "Operation",
    "OperationAccepted",
    "PortRoute",
    "Publish",
    "PublishedHttpRoute",
    "PublishedPortRoute",
    "PublishedRoute",
    "Repository",
    "RepositoryAdded",
    "RepositoryChecked",
    "RepositoryKind",
    "Resize",
    "RestoreBackup",
    "RestoreSnapshot",
    "RetentionCounts",
    "Route",
    "RouteKind",
    "RouteRemoved",
    "RunBackup",
    "SetEgress",
    "SetQuota",
    "SetSnapshotPolicy",
    "Snapshot",
    "SnapshotPolicy",
    "SnapshotRemoved",
    "SshConfig",
    "TakeSnapshot",
    "Token",
    "TokenCreated",
    "User",
    "UserDetail",
    "WireModel",
]
