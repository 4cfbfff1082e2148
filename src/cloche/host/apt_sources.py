"""Read this host's apt sources (render/apt_sources.py finds the Debian mirror in them)."""

from __future__ import annotations

import platform
import re
from pathlib import Path

APT_DIRECTORY = Path("/etc/apt")

# apt ignores files in sources.list.d whose names have other characters (backups, *.save).
_APT_FILE_NAME = re.compile(r"[A-Za-z0-9_.-]+\.(list|sources)")

# platform.machine() to the architecture names dpkg and apt's arch= use.
_DPKG_ARCHITECTURES = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "armhf",
    "i686": "i386",
    "ppc64le": "ppc64el",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def sources_files(apt_directory: Path = APT_DIRECTORY) -> list[tuple[str, str]]:
    """(file name, text) of every apt sources file, in the order apt reads them."""
    paths = [apt_directory / "sources.list"]
    parts = apt_directory / "sources.list.d"
    if parts.is_dir():
        paths += sorted(
            (path for path in parts.iterdir() if _APT_FILE_NAME.fullmatch(path.name)),
            key=lambda path: path.name,
        )
    files = []
    for path in paths:
        try:
            files.append((path.name, path.read_text(errors="replace")))
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            continue
    return files


def dpkg_architecture() -> str | None:
    """This host's architecture as dpkg names it, or None when cloche does not know the name."""
    return _DPKG_ARCHITECTURES.get(platform.machine())


class HostAptSources:
    """The apt sources of this host (or of another root, for tests)."""

    def __init__(self, apt_directory: Path = APT_DIRECTORY) -> None:
        self.apt_directory = apt_directory

    def sources_files(self) -> list[tuple[str, str]]:
        """(file name, text) of every apt sources file, in the order apt reads them."""
        return sources_files(self.apt_directory)

    def architecture(self) -> str | None:
        """This host's architecture as dpkg names it (None when unknown)."""
        return dpkg_architecture()
