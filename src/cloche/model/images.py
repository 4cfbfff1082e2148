"""The values that cross the image ports: a build request, a cache entry, an LXD image."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# The LXD image property holding the cache key an image was built from.
KEY_PROPERTY = "cloche.key"

METADATA_TARBALL = "meta.tar.xz"
ROOTFS_TARBALL = "rootfs.tar.zst"


@dataclass(frozen=True)
class CachedImage:
    """A complete cache entry: the two tarballs LXD imports as one split image."""

    directory: Path
    cache_key: str

    @property
    def metadata_path(self) -> Path:
        """The metadata tarball (metadata.yaml and templates/)."""
        return self.directory / METADATA_TARBALL

    @property
    def rootfs_path(self) -> Path:
        """The root filesystem tarball."""
        return self.directory / ROOTFS_TARBALL


@dataclass(frozen=True)
class BuildRequest:
    """Everything the build writes, already decided by the pure recipe."""

    cache_key: str
    release: str
    mirror: str
    packages: Sequence[str]
    apt_sources: str
    files: Sequence[tuple[str, str, int]]
    symlinks: Mapping[str, str]
    masked_units: Sequence[str]
    enabled_units: Sequence[str]
    metadata_yaml: str
    templates: Mapping[str, str]


@dataclass(frozen=True)
class ImageInfo:
    """What cloche reads back of an LXD image."""

    fingerprint: str
    aliases: tuple[str, ...] = ()
    size_bytes: int = 0
    created_at: str = ""
    uploaded_at: str = ""
    architecture: str = ""
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def alias(self) -> str:
        """The first alias, or '' when the image has none."""
        return self.aliases[0] if self.aliases else ""

    @property
    def cache_key(self) -> str | None:
        """The cloche cache key the image was built from, if cloche built it."""
        return self.properties.get(KEY_PROPERTY)

    @property
    def short_fingerprint(self) -> str:
        """The first 12 characters of the fingerprint, as lxc shows it."""
        return self.fingerprint[:12]
