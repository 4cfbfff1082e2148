"""The image use cases against fakes: build, reuse the cache, import, alias, mirror, status."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cloche.core.images import build_image, image_status, list_images
from cloche.core.ports import ImagePorts
from cloche.model.config import ClocheConfig, ImageConfig
from cloche.model.errors import HostFailure, Invalid
from cloche.model.images import KEY_PROPERTY, BuildRequest, CachedImage, ImageInfo
from cloche.render import image as recipe

MIRROR = "http://mirror.example/debian"
ALIAS = "cloche/bookworm"
KEY = recipe.image_cache_key("bookworm", [])


class FakeBuilder:
    """A cache of entries by key; build adds one and records the request."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self.entries: dict[str, CachedImage] = {}
        self.requests: list[BuildRequest] = []
        self.checked: list[str] = []

    def architecture(self) -> str:
        return "x86_64"

    def cached_image(self, cache_key: str) -> CachedImage | None:
        return self.entries.get(cache_key)

    def check_release(self, release: str) -> None:
        self.checked.append(release)

    def build(self, request: BuildRequest, progress: Callable[[str], None]) -> CachedImage:
        progress(f"building {request.cache_key}")
        self.requests.append(request)
        entry = CachedImage(self.cache_dir / request.cache_key, request.cache_key)
        self.entries[request.cache_key] = entry
        return entry

    def fingerprint(self, entry: CachedImage) -> str:
        return f"fp-{entry.cache_key}"


class FakeStore:
    """LXD's images by fingerprint and its aliases; fail_import makes the next import fail."""

    def __init__(self) -> None:
        self.images: dict[str, ImageInfo] = {}
        self.aliases: dict[str, str] = {}
        self.imported: list[Path] = []
        self.fail_import: HostFailure | None = None
        self.import_anyway = False
        self.calls = 0

    def add(self, fingerprint: str, cache_key: str) -> None:
        self.images[fingerprint] = ImageInfo(fingerprint, properties={KEY_PROPERTY: cache_key})

    def find(self, fingerprint: str) -> ImageInfo | None:
        self.calls += 1
        return self.images.get(fingerprint)

    def find_by_alias(self, alias: str) -> ImageInfo | None:
        self.calls += 1
        target = self.aliases.get(alias)
        return None if target is None else self.images.get(target)

    def import_split_image(self, metadata_path: Path, rootfs_path: Path) -> ImageInfo:
        self.calls += 1
        fingerprint = f"fp-{metadata_path.parent.name}"
        if self.fail_import is not None:
            if self.import_anyway:  # another build imported the same tarballs meanwhile
                self.add(fingerprint, metadata_path.parent.name)
            raise self.fail_import
        self.imported.append(rootfs_path)
        self.add(fingerprint, metadata_path.parent.name)
        return self.images[fingerprint]

    def point_alias(self, alias: str, fingerprint: str, description: str) -> None:
        self.calls += 1
        assert description.startswith("cloche base image")
        self.aliases[alias] = fingerprint

    def list_images(self) -> list[ImageInfo]:
        return list(self.images.values())


class FakeAptSources:
    """Apt sources given as texts."""

    def __init__(self, files: list[tuple[str, str]]) -> None:
        self.files = files

    def sources_files(self) -> list[tuple[str, str]]:
        return self.files

    def architecture(self) -> str | None:
        return "amd64"


class Fakes:
    """The three fakes and the ports made of them."""

    def __init__(self, tmp_path: Path, sources: str = f"deb {MIRROR} bookworm main\n") -> None:
        self.builder = FakeBuilder(tmp_path)
        self.store = FakeStore()
        self.apt_sources = FakeAptSources([("sources.list", sources)])
        self.ports = ImagePorts(self.builder, self.store, self.apt_sources)


@pytest.fixture
def fakes(tmp_path: Path) -> Fakes:
    return Fakes(tmp_path)


def test_first_build_bootstraps_from_the_hosts_mirror_imports_and_points_the_alias(
    fakes: Fakes,
) -> None:
    messages: list[str] = []
    result = build_image(ClocheConfig(), fakes.ports, progress=messages.append)
    assert (result.alias, result.cache_key, result.built, result.imported) == (
        ALIAS,
        KEY,
        True,
        True,
    )
    [request] = fakes.builder.requests
    assert request.mirror == MIRROR
    assert request.apt_sources == recipe.apt_sources("bookworm", MIRROR)
    assert "architecture: x86_64" in request.metadata_yaml
    assert fakes.builder.checked == ["bookworm"]
    assert fakes.store.aliases == {ALIAS: result.fingerprint}
    assert messages[-1] == f"importing into LXD as {ALIAS}"


def test_an_up_to_date_alias_is_a_no_op(fakes: Fakes) -> None:
    fakes.store.add("fp-old", KEY)
    fakes.store.aliases[ALIAS] = "fp-old"
    result = build_image(ClocheConfig(), fakes.ports)
    assert (result.fingerprint, result.built, result.imported) == ("fp-old", False, False)
    assert fakes.builder.requests == [] and fakes.store.imported == []


def test_a_cached_build_is_imported_without_building(fakes: Fakes, tmp_path: Path) -> None:
    fakes.builder.entries[KEY] = CachedImage(tmp_path / KEY, KEY)
    result = build_image(ClocheConfig(), fakes.ports)
    assert (result.built, result.imported) == (False, True)
    assert fakes.builder.requests == [] and fakes.builder.checked == []
    assert fakes.store.imported == [tmp_path / KEY / "rootfs.tar.zst"]


def test_an_image_already_in_lxd_only_gets_the_alias(fakes: Fakes, tmp_path: Path) -> None:
    fakes.builder.entries[KEY] = CachedImage(tmp_path / KEY, KEY)
    fakes.store.add(f"fp-{KEY}", KEY)
    fakes.store.aliases[ALIAS] = "fp-other-recipe"
    result = build_image(ClocheConfig(), fakes.ports)
    assert (result.built, result.imported) == (False, False)
    assert fakes.store.aliases[ALIAS] == f"fp-{KEY}"


def test_an_import_another_build_won_is_not_a_failure(fakes: Fakes) -> None:
    fakes.store.fail_import = HostFailure("LXD refused to import the image")
    fakes.store.import_anyway = True
    result = build_image(ClocheConfig(), fakes.ports)
    assert (result.built, result.imported) == (True, False)
    assert fakes.store.aliases[ALIAS] == f"fp-{KEY}"


def test_a_failed_import_is_raised(fakes: Fakes) -> None:
    fakes.store.fail_import = HostFailure("LXD refused to import the image")
    with pytest.raises(HostFailure, match="refused"):
        build_image(ClocheConfig(), fakes.ports)
    assert fakes.store.aliases == {}


def test_the_configured_mirror_wins_over_the_hosts(fakes: Fakes) -> None:
    config = ClocheConfig(image=ImageConfig(mirror="http://other.example/debian"))
    build_image(config, fakes.ports)
    assert fakes.builder.requests[0].mirror == "http://other.example/debian"


def test_a_host_without_debian_sources_needs_image_mirror(tmp_path: Path) -> None:
    ubuntu = Fakes(tmp_path, "deb http://ubuntu.mirror.example/ubuntu noble main\n")
    with pytest.raises(Invalid, match=r"image\.mirror in /etc/cloche/config\.yaml"):
        build_image(ClocheConfig(), ubuntu.ports)
    assert ubuntu.store.calls == 0 and ubuntu.builder.requests == []


def test_extra_packages_and_release_change_the_request(fakes: Fakes) -> None:
    result = build_image(ClocheConfig(), fakes.ports, release="trixie", extra_packages=["git"])
    assert result.alias == "cloche/trixie"
    assert result.cache_key == recipe.image_cache_key("trixie", ["git"])
    assert "git" in fakes.builder.requests[0].packages


def test_status_says_what_is_missing_and_what_to_run(fakes: Fakes, tmp_path: Path) -> None:
    config = ClocheConfig()
    assert image_status(config, fakes.ports) == (
        False,
        f"no image {ALIAS}; run 'cloche image build'",
    )
    fakes.builder.entries[KEY] = CachedImage(tmp_path / KEY, KEY)
    assert image_status(config, fakes.ports)[1].endswith(
        "(a cached build exists); run 'cloche image build'"
    )
    fakes.store.add("fp-0123456789abcdef", "another-key")
    fakes.store.aliases[ALIAS] = "fp-0123456789abcdef"
    ok, line = image_status(config, fakes.ports)
    assert ok and line.startswith(f"{ALIAS}: fp-012345678 (built from another recipe")
    fakes.store.add("fp-0123456789abcdef", KEY)
    assert image_status(config, fakes.ports) == (True, f"{ALIAS}: fp-012345678")


def test_status_reports_an_lxd_failure_as_its_line(fakes: Fakes) -> None:
    def refuse(alias: str) -> ImageInfo | None:
        raise HostFailure("LXD is not running")

    fakes.store.find_by_alias = refuse  # type: ignore[method-assign]
    assert image_status(ClocheConfig(), fakes.ports) == (False, f"{ALIAS}: LXD is not running")


def test_list_images_is_the_stores(fakes: Fakes) -> None:
    fakes.store.add("fp-a", KEY)
    assert [image.fingerprint for image in list_images(fakes.ports)] == ["fp-a"]
