"""LXD image operations: find by alias or fingerprint, import a split image, point an alias."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pylxd import exceptions as lxd_errors

from cloche.model.errors import HostFailure
from cloche.model.images import ImageInfo
from cloche.runtime.lxd import Lxd
from cloche.runtime.lxd_errors import refused


def _image_info(metadata: dict[str, Any]) -> ImageInfo:
    return ImageInfo(
        fingerprint=str(metadata["fingerprint"]),
        aliases=tuple(str(alias["name"]) for alias in metadata.get("aliases") or ()),
        size_bytes=int(metadata.get("size") or 0),
        created_at=str(metadata.get("created_at") or ""),
        uploaded_at=str(metadata.get("uploaded_at") or ""),
        architecture=str(metadata.get("architecture") or ""),
        properties={
            str(key): str(value) for key, value in (metadata.get("properties") or {}).items()
        },
    )


def find_image(lxd: Lxd, fingerprint: str) -> ImageInfo | None:
    """The image with this fingerprint, or None."""
    try:
        response = lxd.client.api.images[fingerprint].get()
    except lxd_errors.NotFound:
        return None
    except lxd_errors.LXDAPIException as error:
        raise refused(f"read image {fingerprint[:12]}", error) from error
    return _image_info(response.json()["metadata"])


def find_image_by_alias(lxd: Lxd, alias: str) -> ImageInfo | None:
    """The image an alias points at, or None when the alias does not exist."""
    try:
        response = lxd.client.api.images.aliases[alias].get()
    except lxd_errors.NotFound:
        return None
    except lxd_errors.LXDAPIException as error:
        raise refused(f"read image alias {alias!r}", error) from error
    return find_image(lxd, str(response.json()["metadata"]["target"]))


def import_split_image(lxd: Lxd, metadata_path: Path, rootfs_path: Path) -> ImageInfo:
    """Upload a metadata tarball and a rootfs tarball as one image; return it."""
    try:
        # Open files, not bytes: the multipart upload streams them instead of holding ~100 MB.
        with metadata_path.open("rb") as metadata, rootfs_path.open("rb") as rootfs:
            image = lxd.client.images.create(rootfs, metadata=metadata)
    except lxd_errors.LXDAPIException as error:
        raise refused(f"import the image from {metadata_path.parent}", error) from error
    info = find_image(lxd, str(image.fingerprint))
    if info is None:
        raise HostFailure(
            f"LXD accepted the image from {metadata_path.parent} but does not list it; "
            "run the build again."
        )
    return info


def point_alias(lxd: Lxd, alias: str, fingerprint: str, description: str = "") -> None:
    """Create the alias, or move it to fingerprint when it points elsewhere."""
    aliases = lxd.client.api.images.aliases
    try:
        try:
            current = aliases[alias].get().json()["metadata"]
        except lxd_errors.NotFound:
            aliases.post(json={"name": alias, "target": fingerprint, "description": description})
            return
        if current["target"] != fingerprint or current.get("description") != description:
            aliases[alias].put(json={"target": fingerprint, "description": description})
    except lxd_errors.LXDAPIException as error:
        raise refused(f"point the alias {alias!r} at {fingerprint[:12]}", error) from error


def list_images(lxd: Lxd) -> list[ImageInfo]:
    """Every image in LXD's default project, newest first."""
    try:
        response = lxd.client.api.images.get(params={"recursion": "1"})
    except lxd_errors.LXDAPIException as error:
        raise refused("list images", error) from error
    images = [_image_info(metadata) for metadata in response.json()["metadata"]]
    return sorted(images, key=lambda image: image.uploaded_at, reverse=True)


class LxdImageStore:
    """The images of the LXD server at socket_path, connected to on first use."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._lxd: Lxd | None = None

    def _connection(self) -> Lxd:
        # Connecting raises when LXD is not running; a status check must get that as its answer.
        if self._lxd is None:
            self._lxd = Lxd(self.socket_path)
        return self._lxd

    def find(self, fingerprint: str) -> ImageInfo | None:
        """The image with this fingerprint, or None."""
        return find_image(self._connection(), fingerprint)

    def find_by_alias(self, alias: str) -> ImageInfo | None:
        """The image an alias points at, or None when the alias does not exist."""
        return find_image_by_alias(self._connection(), alias)

    def import_split_image(self, metadata_path: Path, rootfs_path: Path) -> ImageInfo:
        """Upload a metadata tarball and a rootfs tarball as one image; return it."""
        return import_split_image(self._connection(), metadata_path, rootfs_path)

    def point_alias(self, alias: str, fingerprint: str, description: str) -> None:
        """Create the alias, or move it to fingerprint when it points elsewhere."""
        point_alias(self._connection(), alias, fingerprint, description)

    def list_images(self) -> list[ImageInfo]:
        """Every image in LXD's default project, newest first."""
        return list_images(self._connection())
