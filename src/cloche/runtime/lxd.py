"""The LXD boundary: a typed facade over pylxd, the only module that talks to LXD's API."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pylxd
from pylxd import exceptions as lxd_errors

from cloche.model.errors import HostFailure, NotFound
from cloche.model.host import LxdObject
from cloche.runtime.lxd_errors import refused


@contextmanager
def _refusing(doing: str) -> Iterator[None]:
    try:
        yield
    except lxd_errors.LXDAPIException as error:
        raise refused(doing, error) from error


def _read(manager: Any, name: str, extra: Callable[[Any], dict[str, Any]]) -> LxdObject | None:
    # pylxd's managers raise NotFound for an absent object; the facade answers None.
    try:
        found = manager.get(name)
    except lxd_errors.NotFound:
        return None
    return LxdObject(
        name=found.name,
        description=found.description or "",
        config=dict(found.config),
        **extra(found),
    )


class Lxd:
    """A connection to one LXD server over its unix socket."""

    def __init__(self, socket_path: str, project: str | None = None) -> None:
        if not os.path.exists(socket_path):
            raise HostFailure(
                f"LXD is not running (no socket at {socket_path}); run 'cloche host init'."
            )
        try:
            self.client: Any = pylxd.Client(endpoint=socket_path, project=project)
        except Exception as error:
            raise HostFailure(
                f"LXD does not answer on {socket_path} ({error}); run 'cloche host init'."
            ) from error
        self.socket_path = socket_path

    def server_version(self) -> str:
        """The LXD server's version string."""
        return str(self.client.host_info["environment"]["server_version"])

    # Storage pools -------------------------------------------------------------------------

    def get_pool(self, name: str) -> LxdObject | None:
        """The pool named name, or None."""
        return _read(self.client.storage_pools, name, lambda pool: {"driver": pool.driver})

    def create_pool(self, request: dict[str, Any]) -> None:
        """Create a storage pool from an LXD request body."""
        with _refusing(f"create storage pool {request['name']!r}"):
            self.client.storage_pools.create(request)

    # Networks ------------------------------------------------------------------------------

    def get_network(self, name: str) -> LxdObject | None:
        """The network named name, or None."""
        return _read(
            self.client.networks,
            name,
            lambda network: {"kind": network.type, "managed": bool(network.managed)},
        )

    def create_network(self, request: dict[str, Any]) -> None:
        """Create a managed network from an LXD request body."""
        body = dict(request)
        with _refusing(f"create network {request['name']!r}"):
            self.client.networks.create(
                body.pop("name"),
                description=body.get("description"),
                type=body.get("type"),
                config=body.get("config"),
            )

    def update_network(self, request: dict[str, Any]) -> None:
        """Replace a managed network's description and config."""
        with _refusing(f"update network {request['name']!r}"):
            network = self.client.networks.get(request["name"])
            network.description = request.get("description", "")
            network.config = request.get("config", {})
            network.save(wait=True)

    # Profiles ------------------------------------------------------------------------------

    def get_profile(self, name: str) -> LxdObject | None:
        """The profile named name, or None."""
        return _read(
            self.client.profiles,
            name,
            lambda profile: {"devices": {key: dict(v) for key, v in profile.devices.items()}},
        )

    def create_profile(self, request: dict[str, Any]) -> None:
        """Create a profile from an LXD request body."""
        with _refusing(f"create profile {request['name']!r}"):
            self.client.profiles.create(
                request["name"],
                config=request.get("config", {}),
                devices=request.get("devices", {}),
                description=request.get("description"),
            )

    def update_profile(self, request: dict[str, Any]) -> None:
        """Replace a profile's description, config and devices."""
        try:
            profile = self.client.profiles.get(request["name"])
            profile.description = request.get("description", "")
            profile.config = request.get("config", {})
            profile.devices = request.get("devices", {})
            profile.save(wait=True)
        except lxd_errors.NotFound as error:
            raise NotFound(f"LXD has no profile {request['name']!r}.") from error
        except lxd_errors.LXDAPIException as error:
            raise refused(f"update profile {request['name']!r}", error) from error
