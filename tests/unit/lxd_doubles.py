"""A stand-in for pylxd's raw client (client.api[...].get() and friends) and its refusals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pylxd import exceptions as pylxd_errors


@dataclass
class FakeResponse:
    """What pylxd's requests hand back: a status, a JSON body, raw content."""

    body: Any = None
    status_code: int = 200
    content: bytes = b""

    def json(self) -> Any:
        """The JSON body."""
        return self.body


def refusal(status: int, text: str) -> pylxd_errors.LXDAPIException:
    """The exception pylxd raises for an LXD error answer with this status and sentence."""
    response = FakeResponse({"type": "error", "error": text, "error_code": status}, status)
    kinds = {404: pylxd_errors.NotFound, 409: pylxd_errors.Conflict}
    return kinds.get(status, pylxd_errors.LXDAPIException)(response)


def sync(metadata: Any = None, content: bytes = b"") -> FakeResponse:
    """A synchronous LXD answer (content: what a raw read such as a log gives)."""
    return FakeResponse({"type": "sync", "status": "Success", "metadata": metadata}, 200, content)


def started(operation: str = "op1") -> FakeResponse:
    """An LXD answer that started a background operation."""
    return FakeResponse({"type": "async", "operation": f"/1.0/operations/{operation}"})


def finished(status: str = "Success", err: str = "", metadata: Any = None) -> FakeResponse:
    """GET /1.0/operations/ID/wait for an operation that ended (or is still Running)."""
    return sync({"status": status, "err": err, "metadata": metadata})


# An answer: a response, an exception to raise, or a function of the request's options.
Answer = FakeResponse | Exception | Callable[[dict[str, Any]], FakeResponse]


@dataclass
class FakeClient:
    """client.api as a tree of paths; each (method, path) answers from a queue, the last repeats."""

    project: str = "cloche-alice"
    answers: dict[tuple[str, str], list[Answer]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    @property
    def api(self) -> FakeNode:
        """The root of the REST API."""
        return FakeNode(self, "")

    def answer(self, method: str, path: str, *answers: Answer) -> None:
        """Queue what method on path answers, in order (the last one repeats)."""
        self.answers[(method, path)] = list(answers)

    def respond(self, method: str, path: str, options: dict[str, Any]) -> FakeResponse:
        """Record a request and give its answer."""
        self.requests.append((method, path, options))
        queue = self.answers.get((method, path))
        if not queue:
            raise refusal(404, f"no answer for {method} {path}")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer(options) if callable(answer) else answer

    def sent(self, method: str, path: str) -> list[dict[str, Any]]:
        """The options of each request of method on path, in order."""
        return [options for m, p, options in self.requests if (m, p) == (method, path)]


@dataclass
class FakeNode:
    """One path below the API root."""

    client: FakeClient
    path: str

    def __getitem__(self, segment: str) -> FakeNode:
        return FakeNode(self.client, f"{self.path}/{segment}")

    def get(self, **options: Any) -> FakeResponse:
        """GET the path."""
        return self.client.respond("get", self.path, options)

    def post(self, **options: Any) -> FakeResponse:
        """POST to the path."""
        return self.client.respond("post", self.path, options)

    def put(self, **options: Any) -> FakeResponse:
        """PUT the path."""
        return self.client.respond("put", self.path, options)

    def patch(self, **options: Any) -> FakeResponse:
        """PATCH the path."""
        return self.client.respond("patch", self.path, options)

    def delete(self, **options: Any) -> FakeResponse:
        """DELETE the path."""
        return self.client.respond("delete", self.path, options)
