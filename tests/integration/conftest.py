"""Fixtures for tests against the real LXD: unique names, cleanup even on failure."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from cloche.host.apt_sources import HostAptSources
from cloche.render.apt_sources import debian_mirror
from tests.conftest import unique_suffix


def lxc(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real lxc client and return its output."""
    return subprocess.run(
        ["lxc", *args], capture_output=True, text=True, check=check, timeout=timeout
    )


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at address right now (0.0.0.0: on every address)."""
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def apt_mirror_host() -> str:
    """The host name of the Debian mirror this host's apt sources use (DNS tests resolve it)."""
    sources = HostAptSources()
    mirror = debian_mirror(sources.sources_files(), sources.architecture())
    hostname = urlsplit(mirror).hostname if mirror else None
    if not hostname:
        pytest.skip("this host's apt sources name no Debian mirror to resolve")
    return hostname


def delete_instance(name: str, project: str = "default") -> None:
    """Delete an instance whatever state it is in; a missing one is fine."""
    lxc("stop", name, "--project", project, "--timeout", "10", check=False, timeout=30)
    lxc("delete", name, "--project", project, "--force", check=False, timeout=120)


@pytest.fixture
def instance_names() -> Iterator[list[str]]:
    """A list tests append instance names to; every one is deleted afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        delete_instance(name)


@pytest.fixture
def unique_name() -> str:
    """A name no other test run uses."""
    return f"t-{unique_suffix()}"
