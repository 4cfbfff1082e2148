"""Shared field types of request bodies: CPU counts and sizes such as '2GiB'."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from cloche.model.errors import Invalid
from cloche.model.units import parse_size

PositiveInt = Annotated[int, Field(ge=1, le=4096)]
ProcessCount = Annotated[int, Field(ge=32, le=1_000_000)]


def optional_size(value: str | None) -> int | None:
    """The bytes of a size text, or None; a bad size is a ValueError (pydantic's 422)."""
    if value is None:
        return None
    try:
        return parse_size(value)
    except Invalid as error:
        raise ValueError(str(error)) from None


def check_size_text(value: str | None) -> str | None:
    """A field validator: the text must parse as a size."""
    optional_size(value)
    return value
