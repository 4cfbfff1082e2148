"""Kernel settings: read them, apply them now, and persist them for the next boot."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from cloche.host.files import read_text_or_none, write_atomically
from cloche.host.run import run

PROC_SYS = Path("/proc/sys")


def read_settings(keys: Iterable[str]) -> dict[str, int | None]:
    """Current integer values of sysctl keys (None when the kernel has no such key)."""
    values: dict[str, int | None] = {}
    for key in keys:
        text = read_text_or_none(PROC_SYS / key.replace(".", "/"))
        values[key] = int(text.split()[0]) if text and text.split() else None
    return values


def apply_settings(settings: Mapping[str, int]) -> None:
    """Set each key now with sysctl -w."""
    if settings:
        run(["sysctl", "-q", "-w", *(f"{key}={value}" for key, value in settings.items())])


def persist_settings(path: Path, text: str) -> bool:
    """Write the sysctl.d file if its text changed; return whether it was written."""
    if read_text_or_none(path) == text:
        return False
    write_atomically(path, text)
    return True
