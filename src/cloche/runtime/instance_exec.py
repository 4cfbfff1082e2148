"""Inside an instance: commands run with a deadline, and files written and read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pylxd import exceptions as pylxd_errors

from cloche.model.errors import HostFailure, Invalid
from cloche.model.instances import ExecResult
from cloche.runtime.lxd_api import LxdApi
from cloche.runtime.lxd_errors import OperationFailed, lxd_text
from cloche.runtime.lxd_records import EXEC_TIMED_OUT, timed_command

_COMMAND_NOT_FOUND = 127
_NO_DEADLINE = 7 * 24 * 3600.0
# How much longer than the command's own deadline the wait for LXD's operation may take.
_EXEC_GRACE_SECONDS = 30


class InstanceExec:
    """Commands and files inside the instances of one project."""

    def __init__(self, api: LxdApi) -> None:
        self.api = api
        self.project = api.project

    def exec(
        self,
        name: str,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        user: int | None = None,
        group: int | None = None,
        cwd: str | None = None,
        environment: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        """Run argv inside a running instance (as uid/gid when given) and collect its output."""
        if not argv:
            raise Invalid("Give a command to run; the argument list is empty.")
        command = timed_command(argv, timeout)
        variables = dict(environment or {})
        with self.api.refusals(f"run {argv[0]!r} in {name!r}"):
            try:
                if stdin is None:
                    body: dict[str, Any] = {
                        "command": command,
                        "environment": variables,
                        "interactive": False,
                        "user": user,
                        "group": group,
                        "cwd": cwd,
                    }
                    exit_code, stdout, stderr = self._exec_recorded(name, body, timeout)
                else:
                    exit_code, stdout, stderr = self.api.execute(
                        name,
                        command,
                        stdin=stdin,
                        environment=variables,
                        user=user,
                        group=group,
                        cwd=cwd,
                    )
            except (OperationFailed, pylxd_errors.LXDAPIException) as error:
                if "command not found" not in lxd_text(error).lower():
                    raise
                # What a shell (and coreutils' timeout) answer: exit status 127.
                message = f"{argv[0]}: command not found\n".encode()
                return ExecResult(_COMMAND_NOT_FOUND, b"", message)
        if timeout is not None and exit_code == EXEC_TIMED_OUT:
            raise HostFailure(
                f"Command {argv[0]!r} in {name!r} did not finish within {timeout:g} s and was "
                "killed; give it more time or check what it waits for."
            )
        return ExecResult(exit_code, stdout, stderr)

    def _exec_recorded(
        self, name: str, body: dict[str, Any], timeout: float | None
    ) -> tuple[int, bytes, bytes]:
        # Without stdin, LXD records the output to files: no websockets (pylxd's ws4py threads
        # race at close), and the wait for the operation has a deadline.
        body = {**body, "wait-for-websocket": False, "record-output": True}
        wait = _NO_DEADLINE if timeout is None else timeout + _EXEC_GRACE_SECONDS
        metadata = self.api.send("post", ("instances", name, "exec"), wait, body=body)
        outputs: list[bytes] = []
        results = metadata.get("metadata") or {}
        for fd in ("1", "2"):
            path = str((results.get("output") or {}).get(fd, ""))
            if not path:
                outputs.append(b"")
                continue
            log = ("instances", name, "logs", path.rsplit("/", 1)[-1])
            outputs.append(self.api.read_bytes(log))
            self.api.send("delete", log, _EXEC_GRACE_SECONDS)
        return int(results.get("return", -1)), outputs[0], outputs[1]

    def push_file(
        self, name: str, path: str, data: bytes, *, mode: int = 0o644, uid: int = 0, gid: int = 0
    ) -> None:
        """Write a file inside the instance (uid/gid as seen inside)."""
        with self.api.refusals(f"write {path} in {name!r}"):
            self.api.push_file(name, path, data, mode, uid, gid)

    def pull_file(self, name: str, path: str) -> bytes:
        """Read a file from inside the instance."""
        with self.api.refusals(f"read {path} in {name!r}"):
            return self.api.pull_file(name, path)
