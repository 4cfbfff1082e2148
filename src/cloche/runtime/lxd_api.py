"""Typed calls to LXD's REST API in one project: requests, background operations waited for with
a deadline, retries while an instance is busy, and LXD's refusals turned into cloche's errors.

The runtime's instance and export code reach pylxd only through here, so its untyped client
stays in this module.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any, Literal

from pylxd import exceptions as pylxd_errors

from cloche.model.errors import HostFailure
from cloche.runtime.lxd_errors import OperationFailed, OperationTimeout, is_busy, translate

Method = Literal["get", "post", "put", "patch", "delete"]
# A path below /1.0, one segment an item: ("instances", "web", "state").
ApiPath = Sequence[str]

POLL_SECONDS = 0.25
# The longest one GET .../wait may block, so the deadline is looked at again at least this often.
_WAIT_STEP_SECONDS = 30


def operation_id(body: Mapping[str, Any]) -> str:
    """The id of the background operation an LXD answer started ("/1.0/operations/ID")."""
    return str(body["operation"]).rstrip("/").rsplit("/", 1)[-1]


class LxdApi:
    """One project's view of LXD's REST API, over a pylxd client bound to that project."""

    def __init__(self, client: Any) -> None:
        self._client: Any = client
        self.project: str = str(getattr(client, "project", None) or "default")

    def _node(self, path: ApiPath) -> Any:
        node = self._client.api
        for segment in path:
            node = node[segment]
        return node

    @contextmanager
    def refusals(self, doing: str) -> Iterator[None]:
        """Turn what LXD (or its socket) raises while 'doing' into cloche's errors."""
        try:
            yield
        except OperationTimeout as error:
            raise HostFailure(
                f"LXD did not finish to {doing} in project {self.project} in time ({error}); "
                "check 'lxc operation list' and retry."
            ) from error
        except (pylxd_errors.LXDAPIException, OperationFailed) as error:
            raise translate(error, doing, self.project) from error
        except OSError as error:
            raise HostFailure(
                f"LXD stopped answering while trying to {doing} ({error}); check that LXD runs."
            ) from error

    # Reading -------------------------------------------------------------------------------

    def read(self, path: ApiPath) -> dict[str, Any]:
        """The metadata of one object, e.g. ("instances", "web")."""
        metadata: dict[str, Any] = self._node(path).get().json()["metadata"] or {}
        return metadata

    def read_all(self, path: ApiPath, recursion: int = 1) -> list[dict[str, Any]]:
        """The objects of a collection, each in full (recursion 1) or with its state (2)."""
        response = self._node(path).get(params={"recursion": recursion})
        objects: list[dict[str, Any]] = response.json()["metadata"] or []
        return objects

    def read_names(self, path: ApiPath) -> list[str]:
        """The names in a collection (the last segment of each URL LXD lists, query dropped)."""
        urls = self._node(path).get().json()["metadata"] or []
        return [str(url).split("?", 1)[0].rsplit("/", 1)[-1] for url in urls]

    def read_bytes(self, path: ApiPath) -> bytes:
        """A raw (non-JSON) answer, such as a console or a log file."""
        return bytes(self._node(path).get(is_api=False).content)

    @contextmanager
    def stream(self, path: ApiPath) -> Iterator[Iterator[bytes]]:
        """A raw answer as a stream of 1 MiB chunks, closed when the block ends."""
        response = self._node(path).get(is_api=False, stream=True, timeout=None)
        try:
            yield response.iter_content(chunk_size=1024 * 1024)
        finally:
            response.close()

    # Changing ------------------------------------------------------------------------------

    def send(
        self,
        method: Method,
        path: ApiPath,
        seconds: float,
        *,
        body: Mapping[str, Any] | None = None,
        data: IO[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send a request and wait up to seconds for what it starts; the operation's metadata."""
        options: dict[str, Any] = {}
        if body is not None:
            options["json"] = dict(body)
        if data is not None:
            # An upload may take longer than any fixed HTTP timeout; the operation has one.
            options.update(data=data, headers=dict(headers or {}), timeout=None)
        answer: dict[str, Any] = getattr(self._node(path), method)(**options).json()
        if answer.get("type") != "async":
            metadata: dict[str, Any] = answer.get("metadata") or {}
            return metadata
        return self.wait(operation_id(answer), seconds)

    def send_when_free(
        self,
        method: Method,
        path: ApiPath,
        seconds: float,
        *,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """send, retried while LXD says the instance is busy running another operation.

        LXD refuses a second operation on an instance while one runs, e.g. the stop it does by
        itself when an instance's init exits: "Instance is busy running a "stop" operation".
        """
        deadline = time.monotonic() + seconds
        while True:
            try:
                return self.send(method, path, seconds, body=body)
            except (OperationFailed, pylxd_errors.LXDAPIException) as error:
                if not is_busy(error) or time.monotonic() >= deadline:
                    raise
            time.sleep(POLL_SECONDS)

    def wait(self, op_id: str, seconds: float) -> dict[str, Any]:
        """Wait for an operation; its metadata, or OperationFailed or OperationTimeout."""
        deadline = time.monotonic() + seconds
        while True:
            # LXD's /wait returns when the operation ends or its own timeout passes, so a slow
            # operation never blocks the caller past the deadline.
            step = max(1, min(_WAIT_STEP_SECONDS, round(deadline - time.monotonic())))
            response = self._node(("operations", op_id, "wait")).get(params={"timeout": step})
            metadata: dict[str, Any] = response.json().get("metadata") or {}
            status = metadata.get("status")
            if status == "Success":
                return metadata
            if status in ("Failure", "Cancelled"):
                raise OperationFailed(metadata.get("err") or status)
            if time.monotonic() >= deadline:
                raise OperationTimeout(f"operation {op_id} still {status or 'running'}")

    # Inside an instance (pylxd's object layer: websockets and the files API) ----------------

    def execute(
        self,
        name: str,
        command: Sequence[str],
        *,
        stdin: bytes,
        environment: Mapping[str, str],
        user: int | None,
        group: int | None,
        cwd: str | None,
    ) -> tuple[int, bytes, bytes]:
        """Run command in the instance with stdin fed to it; exit code, stdout and stderr."""
        exit_code, stdout, stderr = self._client.instances.get(name).execute(
            list(command),
            environment=dict(environment),
            decode=False,
            stdin_payload=stdin,
            user=user,
            group=group,
            cwd=cwd,
        )
        return int(exit_code), bytes(stdout or b""), bytes(stderr or b"")

    def push_file(self, name: str, path: str, data: bytes, mode: int, uid: int, gid: int) -> None:
        """Write a file inside the instance."""
        self._client.instances.get(name).files.put(path, data, mode=mode, uid=uid, gid=gid)

    def pull_file(self, name: str, path: str) -> bytes:
        """Read a file from inside the instance."""
        return bytes(self._client.instances.get(name).files.get(path))
