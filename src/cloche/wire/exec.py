"""POST /v1/environments/{user}/{name}/exec: run one command, bytes as base64."""

from __future__ import annotations

from pydantic import Field

from cloche.model.text import decode_base64
from cloche.wire.base import WireModel


class ExecRequest(WireModel):
    """A command (argv) to run as the owner, or as root; stdin as base64."""

    command: list[str] = Field(min_length=1)
    stdin_base64: str = ""
    root: bool = False

    def stdin(self) -> bytes:
        """The bytes to feed the command; Invalid when stdin_base64 is not base64."""
        return decode_base64(self.stdin_base64, "stdin_base64")


class ExecResult(WireModel):
    """The command's exit code and its output, as base64."""

    exit_code: int
    stdout_base64: str
    stderr_base64: str
