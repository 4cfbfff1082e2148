"""Environments in LXD: one project's instances, composed of their concerns.

instance_exec (commands and files inside) <- instance_lifecycle (read, create, start, stop,
delete, limits and devices) <- instance_snapshots (snapshots and copies of them) <- LxdInstances.
"""

from __future__ import annotations

from cloche.runtime.instance_snapshots import InstanceSnapshots
from cloche.runtime.lxd import Lxd
from cloche.runtime.lxd_api import LxdApi


class LxdInstances(InstanceSnapshots):
    """The instances of one project, through a connection bound to that project."""

    def __init__(self, lxd: Lxd) -> None:
        super().__init__(LxdApi(lxd.client))
        self.lxd = lxd

    @classmethod
    def for_project(cls, socket_path: str, project: str) -> LxdInstances:
        """The instances of project on the LXD behind socket_path."""
        return cls(Lxd(socket_path, project=project))
