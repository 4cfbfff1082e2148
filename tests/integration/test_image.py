"""The real base image: built once, cached; its instances boot, get an address and answer SSH."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from cloche.core.context import image_ports
from cloche.core.images import ImageResult, build_image, image_status, list_images
from cloche.model.config import ClocheConfig, ImageConfig
from cloche.model.errors import HostFailure, Invalid
from cloche.render.image import image_alias, image_cache_key
from tests.integration.conftest import apt_mirror_host, lxc

STATE_DIR = Path(os.environ.get("CLOCHE_STATE_DIR", "/var/lib/cloche"))
CONFIG = ClocheConfig()
BOOT_SECONDS = 90.0


@pytest.fixture(scope="module")
def built_image() -> ImageResult:
    """The default image, built (or reused) once for the whole module."""
    return build_image(CONFIG, image_ports(CONFIG, STATE_DIR))


def _launch(name: str) -> None:
    image = image_alias(CONFIG.image.release)
    profile = CONFIG.profile.name
    if lxc("profile", "show", profile, check=False).returncode == 0:
        lxc("launch", image, name, "--profile", profile)
    else:
        lxc(
            "launch",
            image,
            name,
            "--storage",
            CONFIG.storage.pool,
            "--network",
            CONFIG.network.bridge,
            "--config",
            "security.idmap.isolated=true",
        )


def _exec(name: str, *command: str) -> str:
    return lxc("exec", name, "--", *command).stdout.strip()


def _wait_running(name: str) -> None:
    # Right after start the system bus may not exist yet, and systemctl then says 'offline'.
    deadline = time.monotonic() + BOOT_SECONDS
    state = ""
    while time.monotonic() < deadline:
        result = lxc("exec", name, "--", "systemctl", "is-system-running", "--wait", check=False)
        state = result.stdout.strip()
        if state in {"running", "degraded", "maintenance", "stopping"}:
            break
        time.sleep(0.5)
    failed = _exec(name, "systemctl", "--failed", "--no-legend", "--plain")
    assert state == "running", f"{name}: system is {state!r}; failed units: {failed!r}"


def _ipv4(name: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        output = _exec(name, "ip", "-4", "-o", "address", "show", "dev", "eth0", "scope", "global")
        if " inet " in f" {output}":
            return output.split(" inet ", 1)[1].split("/", 1)[0]
        time.sleep(0.5)
    raise AssertionError(f"{name}: eth0 got no IPv4 address within 30 s")


def _ssh_banner(address: str) -> bytes:
    deadline = time.monotonic() + 30
    last_error: OSError | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, 22), timeout=5) as connection:
                return connection.recv(64)
        except OSError as error:
            last_error = error
            time.sleep(0.5)
    raise AssertionError(f"nothing answered on {address}:22 within 30 s ({last_error})")


def _identity(name: str) -> dict[str, str]:
    _wait_running(name)
    address = _ipv4(name)
    assert _ssh_banner(address).startswith(b"SSH-2.0-")
    return {
        "hostname": _exec(name, "hostname"),
        "machine_id": _exec(name, "cat", "/etc/machine-id"),
        "host_key": _exec(name, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").split()[1],
        "address": address,
    }


def test_second_build_is_a_no_op(built_image: ImageResult) -> None:
    assert built_image.alias == "cloche/bookworm"
    assert built_image.cache_key == image_cache_key("bookworm", [])
    again = build_image(CONFIG, image_ports(CONFIG, STATE_DIR))
    assert (again.built, again.imported) == (False, False)
    assert again.fingerprint == built_image.fingerprint
    assert again.seconds < 5
    assert (STATE_DIR / "images" / built_image.cache_key / "rootfs.tar.zst").is_file()
    assert not list((STATE_DIR / "images").glob(".build-*"))


def test_list_and_status_show_the_image(built_image: ImageResult) -> None:
    listed = {image.fingerprint: image for image in list_images(image_ports(CONFIG, STATE_DIR))}
    image = listed[built_image.fingerprint]
    assert "cloche/bookworm" in image.aliases
    assert image.cache_key == built_image.cache_key
    assert image.size_bytes > 10 * 1024**2
    ok, line = image_status(CONFIG, image_ports(CONFIG, STATE_DIR))
    assert ok
    assert line == f"cloche/bookworm: {built_image.fingerprint[:12]}"


def test_instances_boot_network_and_answer_ssh_with_their_own_identity(
    built_image: ImageResult, instance_names: list[str], unique_name: str
) -> None:
    del built_image
    first, second, copy = f"{unique_name}-a", f"{unique_name}-b", f"{unique_name}-c"
    for name in (first, second):
        instance_names.append(name)
        _launch(name)
    identities = {name: _identity(name) for name in (first, second)}

    # A copy (restore as new, a tenant's template) must get a new identity too.
    instance_names.append(copy)
    lxc("copy", first, copy)
    lxc("start", copy)
    identities[copy] = _identity(copy)

    for name, identity in identities.items():
        assert identity["hostname"] == name
        assert len(identity["machine_id"]) == 32
    for field in ("machine_id", "host_key", "address"):
        values = [identity[field] for identity in identities.values()]
        assert len(set(values)) == len(values), f"instances share their {field}: {values}"
    # DNS comes from DHCP (the bridge), through resolved.
    bridge_address = CONFIG.network.gateway_cidr.split("/")[0]
    assert bridge_address in _exec(first, "resolvectl", "dns", "eth0")
    assert _exec(first, "getent", "hosts", apt_mirror_host())
    assert _exec(first, "test", "!", "-e", "/etc/cloche/new-identity") == ""


def test_failed_build_leaves_no_cache_entry(tmp_path: Path) -> None:
    config = ClocheConfig(image=ImageConfig(mirror="http://127.0.0.1:9/debian", packages=["hello"]))
    with pytest.raises(HostFailure, match="debootstrap"):
        build_image(config, image_ports(config, tmp_path))
    entries = [path.name for path in (tmp_path / "images").iterdir()]
    assert entries == [".lock"]


def test_unknown_package_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="no-such-package-for-cloche"):
        build_image(
            CONFIG, image_ports(CONFIG, tmp_path), extra_packages=["no-such-package-for-cloche"]
        )
    assert [path.name for path in (tmp_path / "images").iterdir()] == [".lock"]


def test_unknown_release_is_invalid_before_building(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="release"):
        build_image(CONFIG, image_ports(CONFIG, tmp_path), release="nosuchrelease")
    assert not (tmp_path / "images").exists()
