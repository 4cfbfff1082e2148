"""The images' ports: the debootstrap build, LXD's image store, the host's apt sources."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cloche.model.images import BuildRequest, CachedImage, ImageInfo


class ImageBuilder(Protocol):
    """Builds of the base image's tarballs into the host's cache (host/image_build.py)."""

    def architecture(self) -> str:
        """The host's architecture as LXD names it (x86_64, aarch64)."""
        ...

    def cached_image(self, cache_key: str) -> CachedImage | None:
        """The complete cache entry for cache_key, or None when there is none."""
        ...

    def check_release(self, release: str) -> None:
        """Raise Invalid when the builder does not know how to bootstrap release."""
        ...

    def build(self, request: BuildRequest, progress: Callable[[str], None]) -> CachedImage:
        """Build the request into the cache; the entry appears only when complete."""
        ...

    def fingerprint(self, entry: CachedImage) -> str:
        """The fingerprint LXD will give the entry's split image."""
        ...


class ImageStore(Protocol):
    """The images LXD holds and their aliases (runtime/images.py)."""

    def find(self, fingerprint: str) -> ImageInfo | None:
        """The image with this fingerprint, or None."""
        ...

    def find_by_alias(self, alias: str) -> ImageInfo | None:
        """The image an alias points at, or None when the alias does not exist."""
        ...

    def import_split_image(self, metadata_path: Path, rootfs_path: Path) -> ImageInfo:
        """Upload a metadata tarball and a rootfs tarball as one image; return it."""
        ...

    def point_alias(self, alias: str, fingerprint: str, description: str) -> None:
        """Create the alias, or move it to fingerprint when it points elsewhere."""
        ...

    def list_images(self) -> list[ImageInfo]:
        """Every image, newest first."""
        ...


class AptSources(Protocol):
    """The host's own apt sources, where the default mirror comes from (host/apt_sources.py)."""

    def sources_files(self) -> list[tuple[str, str]]:
        """(file name, text) of every apt sources file, in the order apt reads them."""
        ...

    def architecture(self) -> str | None:
        """The host's architecture as dpkg names it (None when unknown)."""
        ...


@dataclass(frozen=True)
class ImagePorts:
    """What the image use cases (core/images.py) act through."""

    builder: ImageBuilder
    store: ImageStore
    apt_sources: AptSources
