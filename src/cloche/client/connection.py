"""HTTP to the cloche daemon: one request at a time, errors rebuilt as the project's classes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, JsonValue, TypeAdapter, ValidationError

from cloche.model.errors import HostFailure
from cloche.model.errors_wire import error_from_body
from cloche.model.paths import DAEMON_SOCKET

DEFAULT_SOCKET = DAEMON_SOCKET
DEFAULT_TIMEOUT = 120.0

Model = TypeVar("Model", bound=BaseModel)
Shape = TypeVar("Shape")
Params = Mapping[str, str | int | bool]
Body = Mapping[str, JsonValue]


def default_socket() -> str:
    """The daemon's socket (CLOCHE_SOCKET overrides it)."""
    return os.environ.get("CLOCHE_SOCKET", DEFAULT_SOCKET)


def path_of(*parts: str) -> str:
    """An API path from its parts, each quoted so that no name can reach another path."""
    return "/v1/" + "/".join(quote(part, safe="") for part in parts)


class Connection:
    """Sends requests to the daemon and decodes the answers; its errors are ClocheErrors."""

    def __init__(
        self,
        socket_path: str | None = None,
        *,
        http: httpx.Client | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        token: str | None = None,
    ) -> None:
        self._owned = http is None
        if http is None:
            self.where = socket_path or default_socket()
            http = httpx.Client(
                transport=httpx.HTTPTransport(uds=self.where),
                base_url="http://cloche",
                timeout=timeout,
            )
        else:
            self.where = str(http.base_url)
        self._http = http
        # A token narrows who the caller is (its user, scopes and environments).
        self._headers = {} if token is None else {"Authorization": f"Bearer {token}"}

    def close(self) -> None:
        """Close the connection pool (not an httpx client that was handed in)."""
        if self._owned:
            self._http.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        body: Body | None = None,
        params: Params | None = None,
        unlimited: bool = False,
    ) -> JsonValue:
        """Send one request; return the decoded JSON (None for an empty answer).

        unlimited waits as long as the daemon takes (a 'restic check' may take hours).
        """
        try:
            request = self._http.build_request(
                method,
                path,
                json=body,
                params=params,
                headers=self._headers,
                timeout=None if unlimited else httpx.USE_CLIENT_DEFAULT,
            )
            response = self._http.send(request)
        except (httpx.ConnectError, FileNotFoundError, ConnectionRefusedError) as error:
            raise HostFailure(
                f"The cloche daemon does not answer on {self.where}; start it with "
                "'cloche host init' (or check 'cloche host status')."
            ) from error
        except httpx.TimeoutException as error:
            raise HostFailure(
                f"The cloche daemon did not answer {method} {path} in time; check its log."
            ) from error
        if response.status_code >= 400:
            try:
                error_body: object = response.json()
            except ValueError:
                error_body = None
            raise error_from_body(response.status_code, error_body)
        if response.status_code == 204 or not response.content:
            return None
        try:
            answer: JsonValue = response.json()
        except ValueError:
            raise _not_understood(method, path, "it is not JSON") from None
        return answer

    def fetch(
        self,
        model: type[Model],
        method: str,
        path: str,
        *,
        body: Body | None = None,
        params: Params | None = None,
        unlimited: bool = False,
    ) -> Model:
        """Send one request and parse its answer as model."""
        answer = self.send(method, path, body=body, params=params, unlimited=unlimited)
        try:
            return model.model_validate(answer)
        except ValidationError as error:
            raise _not_understood(method, path, _first_problem(error)) from None

    def fetch_list(
        self, model: type[Model], path: str, *, params: Params | None = None
    ) -> list[Model]:
        """GET a list and parse each of its items as model."""
        answer = self.send("GET", path, params=params)
        if not isinstance(answer, list):
            raise _not_understood("GET", path, "it is not a list")
        try:
            return [model.model_validate(item) for item in answer]
        except ValidationError as error:
            raise _not_understood("GET", path, _first_problem(error)) from None

    def fetch_shape(
        self,
        shape: TypeAdapter[Shape],
        method: str,
        path: str,
        *,
        body: Body | None = None,
        params: Params | None = None,
    ) -> Shape:
        """Send one request and parse its answer as shape (a union, or a list of one)."""
        answer = self.send(method, path, body=body, params=params)
        try:
            return shape.validate_python(answer)
        except ValidationError as error:
            raise _not_understood(method, path, _first_problem(error)) from None


def _first_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{location}: {str(first['msg']).rstrip('.')}"


def _not_understood(method: str, path: str, why: str) -> HostFailure:
    return HostFailure(
        f"The cloche daemon answered {method} {path} with a body this client does not "
        f"understand ({why}); run a client of the daemon's version."
    )
