"""docs/client.md's example runs as written: Client() over a unix socket (CLOCHE_SOCKET) to the
real API app, served by uvicorn on fakes."""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from cloche.api.app import create_app
from cloche.api.peer import PeerCredentialsProtocol
from cloche.model.instances import ExecResult
from tests.unit.fakes import FakeContext

DOC = Path(__file__).resolve().parents[2] / "docs" / "client.md"
MARKER = "<!-- example: run by tests/unit/test_client_docs.py -->"


def example() -> str:
    """The python block right after the marker in docs/client.md."""
    text = DOC.read_text()
    block = re.match(r"\s*```python\n(.*?)\n```", text[text.index(MARKER) + len(MARKER) :], re.S)
    assert block is not None, "docs/client.md: the marker must precede a python block"
    return block[1]


@contextlib.contextmanager
def served(context: FakeContext) -> Iterator[str]:
    """The app on a unix socket (a short path: sun_path holds 108 bytes); yields its path."""
    with tempfile.TemporaryDirectory(prefix="cloche-", dir="/tmp") as directory:
        socket = str(Path(directory) / "api.sock")
        config = uvicorn.Config(
            create_app(context), uds=socket, http=PeerCredentialsProtocol, log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        try:
            yield socket
        finally:
            server.should_exit = True
            thread.join(10)


@pytest.fixture
def context(served_world: FakeContext) -> FakeContext:
    def uname(project: str, name: str, argv: object, options: object) -> ExecResult | None:
        return ExecResult(0, b"Linux 6.1.0\n", b"") if argv == ["uname", "-sr"] else None

    served_world.fake.exec_handler = uname
    return served_world


def test_the_example_runs_over_the_socket(
    context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    with served(context) as socket:
        monkeypatch.setenv("CLOCHE_SOCKET", socket)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(example(), str(DOC), "exec"), {})
    assert printed.getvalue().splitlines() == [
        "alice/db: Running at 10.120.0.11",
        "alice/web: Running at 10.120.0.10",
        "bob/api: Running at 10.120.0.12",
        "Running",
        "0 Linux 6.1.0",
        "succeeded",
    ]
    assert "scratch" not in [env.name for env in context.database.environments.list("alice")]
    assert "scratch" not in context.fake.instance_names("cloche-alice")
