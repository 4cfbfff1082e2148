"""The base image recipe (cache key, alias, rootfs files, metadata: golden) and input checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cloche.core.context import image_ports
from cloche.core.images import build_image, image_status
from cloche.model.config import ClocheConfig, LxdConfig
from cloche.model.errors import Invalid
from cloche.model.images import KEY_PROPERTY, ImageInfo
from cloche.render import image
from tests.unit.golden import assert_golden, assert_golden_json

BOOKWORM = "bookworm"


def test_cache_key_ignores_order_and_duplicates_of_extra_packages() -> None:
    key = image.image_cache_key(BOOKWORM, ["git", "vim", "tmux"])
    assert image.image_cache_key(BOOKWORM, ["tmux", "git", "vim"]) == key
    assert image.image_cache_key(BOOKWORM, ["vim", "git", "git", "tmux", "vim"]) == key
    assert image.image_cache_key(BOOKWORM, ("tmux", "vim", "git")) == key


def test_cache_key_ignores_extra_packages_the_base_already_has() -> None:
    assert image.image_cache_key(BOOKWORM, ["curl", "sudo"]) == image.image_cache_key(BOOKWORM, [])


def test_cache_key_changes_with_release_packages_and_recipe_version() -> None:
    key = image.image_cache_key(BOOKWORM, ["git"])
    assert image.image_cache_key("trixie", ["git"]) != key
    assert image.image_cache_key(BOOKWORM, ["git", "vim"]) != key
    assert image.image_cache_key(BOOKWORM, []) != key
    assert image.image_cache_key(BOOKWORM, ["git"], image.RECIPE_VERSION + 1) != key


def test_cache_key_is_short_stable_hex() -> None:
    key = image.image_cache_key(BOOKWORM, [])
    assert len(key) == 16
    int(key, 16)
    # Pinned: a new value means every host rebuilds its image; bump RECIPE_VERSION on purpose.
    assert_golden("image/default-cache-key.txt", key + "\n")


def test_default_config_key_is_the_base_recipe() -> None:
    config = ClocheConfig()
    assert image.image_cache_key(config.image.release, config.image.packages) == (
        image.image_cache_key(BOOKWORM, [])
    )


def test_alias() -> None:
    assert image.image_alias(BOOKWORM) == "cloche/bookworm"


def test_packages_include_what_boot_network_and_ssh_need() -> None:
    packages = image.image_packages(["git", "git"])
    for needed in ("udev", "systemd-sysv", "openssh-server", "systemd-resolved", "git"):
        assert needed in packages
    assert list(packages) == sorted(set(packages))


def test_the_key_the_recipe_writes_is_the_one_images_report() -> None:
    text = image.metadata_yaml(
        architecture="x86_64", creation_date=0, release=BOOKWORM, cache_key="0123"
    )
    assert ImageInfo("f", properties=yaml.safe_load(text)["properties"]).cache_key == "0123"


@pytest.mark.parametrize(
    ("mirror", "security"),
    [
        ("http://mirror.example/debian", "http://mirror.example/debian-security"),
        ("http://mirror.example/debian/", "http://mirror.example/debian-security"),
        (
            "https://mirror.example.org/pub/linux/debian",
            "https://mirror.example.org/pub/linux/debian-security",
        ),
        ("http://apt.example.org/repo", None),
    ],
)
def test_security_mirror(mirror: str, security: str | None) -> None:
    assert image.security_mirror(mirror) == security


def test_apt_sources_golden() -> None:
    assert_golden("image/sources.list", image.apt_sources(BOOKWORM, "http://mirror.example/debian"))
    sources = image.apt_sources(BOOKWORM, "http://apt.example.org/repo")
    assert "security" not in sources


def test_rootfs_files_golden() -> None:
    files = image.rootfs_files()
    paths = [file.path for file in files]
    assert len(paths) == len(set(paths))
    for file in files:
        assert file.path.startswith("/etc/")
        assert_golden(f"image/rootfs{file.path}", file.content)
    assert_golden_json(
        "image/recipe.json",
        {
            "recipe_version": image.RECIPE_VERSION,
            "base_packages": list(image.BASE_PACKAGES),
            "masked_units": list(image.MASKED_UNITS),
            "enabled_units": list(image.ENABLED_UNITS),
            "symlinks": dict(image.ROOTFS_SYMLINKS),
            "modes": {file.path: oct(file.mode) for file in files},
        },
    )


def test_machine_id_is_empty_and_no_file_holds_host_keys() -> None:
    by_path = {file.path: file for file in image.rootfs_files()}
    assert by_path["/etc/machine-id"].content == ""
    assert not any(path.startswith("/etc/ssh/ssh_host_") for path in by_path)


def test_first_boot_unit_makes_host_keys_before_sshd() -> None:
    unit = image.SSH_HOST_KEYS_SERVICE
    assert "Before=ssh.service" in unit
    assert "ssh-keygen -q -t ed25519" in unit
    assert image.SSH_HOST_KEYS_UNIT in image.ENABLED_UNITS


def test_metadata_golden() -> None:
    text = image.metadata_yaml(
        architecture="x86_64",
        creation_date=1_700_000_000,
        release=BOOKWORM,
        cache_key=image.image_cache_key(BOOKWORM, []),
    )
    assert_golden("image/metadata.yaml", text)
    document = yaml.safe_load(text)
    assert document["properties"][KEY_PROPERTY] == image.image_cache_key(BOOKWORM, [])
    assert document["creation_date"] == 1_700_000_000
    templates = image.template_files()
    for path in ("/etc/hostname", "/etc/hosts"):
        assert set(document["templates"][path]["when"]) == {"create", "copy"}
    for path, entry in document["templates"].items():
        assert entry["template"] in templates, path


def test_templates_golden() -> None:
    for name, text in image.template_files().items():
        assert_golden(f"image/templates/{name}", text)
    assert "{{ container.name }}" in image.template_files()["hostname.tpl"]


@pytest.mark.parametrize(
    ("release", "extra_packages", "bad"),
    [
        ("Bookworm", (), "image.release"),
        ("bookworm12", (), "image.release"),
        (None, ("git", "Bad Name"), "image.packages"),
        (None, ("-rf",), "image.packages"),
    ],
)
def test_build_rejects_bad_input_before_touching_the_host(
    tmp_path: Path, release: str | None, extra_packages: tuple[str, ...], bad: str
) -> None:
    config = ClocheConfig(lxd=LxdConfig(socket=str(tmp_path / "no-lxd.socket")))
    with pytest.raises(Invalid, match=bad):
        build_image(
            config, image_ports(config, tmp_path), release=release, extra_packages=extra_packages
        )
    assert list(tmp_path.iterdir()) == []


def test_status_without_lxd_says_what_is_wrong(tmp_path: Path) -> None:
    config = ClocheConfig(lxd=LxdConfig(socket=str(tmp_path / "no-lxd.socket")))
    ok, line = image_status(config, image_ports(config, tmp_path))
    assert not ok
    assert line.startswith("cloche/bookworm: LXD is not running")
