"""POST /v1/environments/{user}/{name}/exec: run one command, bytes as base64."""

from __future__ import annotations

import binascii
from base64 import b64decode

from pydantic import Field, field_validator

from cloche.wire.base import WireModel


class ExecRequest(WireModel):
    """A command (argv) to run as the owner, or as root; stdin as base64."""

    command: list[str] = Field(min_length=1)
    stdin_base64: str = ""
    root: bool = False

    @field_validator("stdin_base64")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("not base64 text (encode the bytes as standard base64)") from None
        return value

    def stdin(self) -> bytes:
        """The bytes to feed the command."""
        return b64decode(self.stdin_base64, validate=True)


class ExecResult(WireModel):
    """The command's exit code and its output, as base64."""

    exit_code: int
    stdout_base64: str
    stderr_base64: str
