"""The cloche API client: HTTP over the daemon's unix socket, errors rebuilt as ClocheError."""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable
from typing import Any

import httpx

from cloche.model.errors import HostFailure
from cloche.model.errors_wire import error_from_body
from cloche.model.paths import DAEMON_SOCKET

DEFAULT_SOCKET = DAEMON_SOCKET


def default_socket() -> str:
    """The daemon's socket (CLOCHE_SOCKET overrides it)."""
    return os.environ.get("CLOCHE_SOCKET", DEFAULT_SOCKET)


class ApiClient:
    """A synchronous client of the cloche daemon's API."""

    def __init__(self, socket_path: str | None = None, timeout: float = 120.0) -> None:
        self.socket_path = socket_path or default_socket()
        self._http = httpx.Client(
            transport=httpx.HTTPTransport(uds=self.socket_path),
            base_url="http://cloche",
            timeout=timeout,
            headers={"X-Cloche-Actor": getpass.getuser()},
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request and return the decoded JSON; raise the daemon's error otherwise."""
        try:
            response = self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, FileNotFoundError, ConnectionRefusedError) as error:
            raise HostFailure(
                f"The cloche daemon does not answer on {self.socket_path}; start it with "
                "'cloche host init' (or check 'cloche host status')."
            ) from error
        except httpx.TimeoutException as error:
            raise HostFailure(
                f"The cloche daemon did not answer {method} {path} in time; check its log."
            ) from error
        if response.status_code >= 400:
            try:
                body: object = response.json()
            except ValueError:
                body = None
            raise error_from_body(response.status_code, body)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get(self, path: str, **kwargs: Any) -> Any:
        """GET path."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        """POST json to path."""
        return self.request("POST", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None) -> Any:
        """PATCH path with json."""
        return self.request("PATCH", path, json=json)

    def delete(self, path: str, **kwargs: Any) -> Any:
        """DELETE path."""
        return self.request("DELETE", path, **kwargs)

    def wait(
        self,
        operation_id: str,
        on_progress: Callable[[str], None] | None = None,
        timeout: float = 900.0,
    ) -> dict[str, Any]:
        """Poll an operation until it ends; return it, or raise the error it failed with."""
        deadline = time.monotonic() + timeout
        # Short operations end in a fraction of a second: poll fast first, then back off.
        pause = 0.05
        while True:
            operation: dict[str, Any] = self.get(f"/v1/operations/{operation_id}")
            if on_progress is not None and operation.get("progress"):
                on_progress(str(operation["progress"]))
            if operation["status"] == "succeeded":
                return operation
            if operation["status"] == "failed":
                raise error_from_body(500, operation.get("error") or {})
            if time.monotonic() > deadline:
                raise HostFailure(
                    f"Operation {operation_id} is still running after {timeout:.0f} s; "
                    f"follow it with 'cloche operation {operation_id} --wait'."
                )
            time.sleep(pause)
            pause = min(pause * 1.5, 0.25)
