"""The ports: every effect a use case has on the world, as a typed Protocol.

Use cases in core/ reach LXD, the host and the state store only through these. The adapters
live in host/, runtime/ and store/; core/context.py is the one core module that wires them
(unit tests wire fakes instead). The values that cross a port are model/ types. One module per
area; import them from here.
"""

from __future__ import annotations

from cloche.core.ports.backups import (
    BackupCatalog,
    BackupFiles,
    Restic,
    Secrets,
)
from cloche.core.ports.host import (
    Clock,
    Files,
    Firewall,
    HostIdentities,
    HostNetwork,
    JumpAccounts,
    KernelSettings,
    LxdDaemon,
    LxdServer,
    Packages,
    Proxy,
    Services,
    Sshd,
)
from cloche.core.ports.images import (
    AptSources,
    ImageBuilder,
    ImagePorts,
    ImageStore,
)
from cloche.core.ports.runtime import (
    Exports,
    Instances,
    Projects,
)
from cloche.core.ports.store import (
    BanStore,
    EnvironmentStore,
    OperationStore,
    RouteStore,
    StateStore,
    TokenStore,
    UserStore,
)

__all__ = [
    "AptSources",
    "BackupCatalog",
    "BackupFiles",
    "BanStore",
    "Clock",
    "EnvironmentStore",
    "Exports",
    "Files",
    "Firewall",
    "HostIdentities",
    "HostNetwork",
    "ImageBuilder",
    "ImagePorts",
    "ImageStore",
    "Instances",
    "JumpAccounts",
    "KernelSettings",
    "LxdDaemon",
    "LxdServer",
    "OperationStore",
    "Packages",
    "Projects",
    "Proxy",
    "Restic",
    "RouteStore",
    "Secrets",
    "Services",
    "Sshd",
    "StateStore",
    "TokenStore",
    "UserStore",
]
