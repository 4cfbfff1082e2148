"""Environments: list, get, create, start, stop, restart, remove, resize, exec."""

from __future__ import annotations

import base64
from collections.abc import Sequence

from pydantic import JsonValue

from cloche.client.connection import path_of
from cloche.client.operations import DEFAULT_WAIT, OperationHandle
from cloche.client.resource import Resource, given
from cloche.model.records import Profile
from cloche.wire import Environment, EnvironmentInfo, ExecResult


class Environments(Resource):
    """/v1/environments: a user's isolated, persistent machines."""

    def list(self, user: str | None = None) -> list[Environment]:
        """Every environment (only user's when given) with its live state."""
        params = {"user": user} if user is not None else None
        return self._connection.fetch_list(Environment, path_of("environments"), params=params)

    def get(self, user: str, name: str) -> EnvironmentInfo:
        """One environment: state, address, image, profile, limits and published routes."""
        return self._connection.fetch(EnvironmentInfo, "GET", path_of("environments", user, name))

    def create(
        self,
        user: str,
        name: str,
        *,
        image: str | None = None,
        profile: Profile | None = None,
        cpu: int | None = None,
        memory: str | None = None,
        disk: str | None = None,
        processes: int | None = None,
        wait: bool = False,
        timeout: float = DEFAULT_WAIT,
    ) -> OperationHandle:
        """Create an environment (sizes as text: '2GiB'); the daemon builds and starts it."""
        body = given(
            user=user,
            name=name,
            profile=profile,
            image=image,
            cpu=cpu,
            memory=memory,
            disk=disk,
            processes=processes,
        )
        return self._start("POST", path_of("environments"), body=body, wait=wait, timeout=timeout)

    def _act(
        self, user: str, name: str, action: str, wait: bool, timeout: float
    ) -> OperationHandle:
        path = path_of("environments", user, name, action)
        return self._start("POST", path, wait=wait, timeout=timeout)

    def start(
        self, user: str, name: str, *, wait: bool = False, timeout: float = DEFAULT_WAIT
    ) -> OperationHandle:
        """Start a stopped environment."""
        return self._act(user, name, "start", wait, timeout)

    def stop(
        self, user: str, name: str, *, wait: bool = False, timeout: float = DEFAULT_WAIT
    ) -> OperationHandle:
        """Stop an environment (its disk stays)."""
        return self._act(user, name, "stop", wait, timeout)

    def restart(
        self, user: str, name: str, *, wait: bool = False, timeout: float = DEFAULT_WAIT
    ) -> OperationHandle:
        """Restart an environment."""
        return self._act(user, name, "restart", wait, timeout)

    def remove(
        self, user: str, name: str, *, wait: bool = False, timeout: float = DEFAULT_WAIT
    ) -> OperationHandle:
        """Delete an environment and everything in it."""
        path = path_of("environments", user, name)
        return self._start("DELETE", path, wait=wait, timeout=timeout)

    def resize(
        self,
        user: str,
        name: str,
        *,
        cpu: int | None = None,
        memory: str | None = None,
        disk: str | None = None,
        processes: int | None = None,
    ) -> Environment:
        """Change limits within the user's quota (the others keep theirs); live where LXD can."""
        body = given(cpu=cpu, memory=memory, disk=disk, processes=processes)
        return self._connection.fetch(
            Environment, "PATCH", path_of("environments", user, name), body=body
        )

    def exec(
        self,
        user: str,
        name: str,
        command: Sequence[str],
        *,
        stdin: bytes = b"",
        root: bool = False,
    ) -> ExecResult:
        """Run a command (argv) as the environment's user, or root; output comes as base64."""
        body: dict[str, JsonValue] = {
            "command": list(command),
            "stdin_base64": base64.b64encode(stdin).decode(),
            "root": root,
        }
        return self._connection.fetch(
            ExecResult, "POST", path_of("environments", user, name, "exec"), body=body
        )
