"""Debian packages: which are missing, and installing them with apt."""

from __future__ import annotations

import os
from collections.abc import Sequence

from cloche.host.run import run


def missing_packages(names: Sequence[str]) -> list[str]:
    """The packages of names that dpkg does not list as installed."""
    result = run(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n", *names],
        check=False,
        timeout=60,
    )
    installed = {
        line.split()[0]
        for line in result.stdout.splitlines()
        if len(line.split()) >= 2 and line.split()[1].startswith("ii")
    }
    return [name for name in names if name not in installed]


def install_packages(names: Sequence[str]) -> None:
    """Install packages non-interactively with apt-get (updating the lists first)."""
    environment = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-q"], timeout=600, env=environment)
    run(["apt-get", "install", "-y", "-q", *names], timeout=1800, env=environment)
