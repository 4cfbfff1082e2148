"""Sizes written the way LXD writes them (20GiB, 512MiB), parsed and checked without I/O."""

from __future__ import annotations

import re

from cloche.model.errors import Invalid

_UNITS = {
    "": 1,
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
}
_SIZE = re.compile(r"(?P<number>[0-9]+)(?P<unit>[KMGT]i?B|B)?")
# LXD and SQLite hold sizes as 64-bit integers; 1 EiB stays far inside them, sums included.
MAXIMUM_SIZE_BYTES = 1024**6
_MAXIMUM_DIGITS = len(str(MAXIMUM_SIZE_BYTES))


def parse_size(text: str) -> int:
    """Return the number of bytes in a size such as '20GiB'; raise Invalid otherwise."""
    match = _SIZE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise Invalid(
            f"{text!r} is not a size; write a whole number and a unit such as 512MiB or 20GiB."
        )
    digits, unit = match["number"].lstrip("0") or "0", _UNITS[match["unit"] or ""]
    # Counting digits first keeps int() off numbers too long for it to convert.
    if len(digits) > _MAXIMUM_DIGITS or int(digits) * unit > MAXIMUM_SIZE_BYTES:
        raise Invalid(
            f"{text!r} is larger than cloche can hold; give a size of at most "
            f"{format_size(MAXIMUM_SIZE_BYTES)} (1 EiB)."
        )
    return int(digits) * unit


def format_size(size_bytes: int) -> str:
    """Return the largest exact binary unit for a byte count (21474836480 -> '20GiB')."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        factor = _UNITS[unit]
        if size_bytes >= factor and size_bytes % factor == 0:
            return f"{size_bytes // factor}{unit}"
    return f"{size_bytes}B"
