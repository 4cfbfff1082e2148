"""Use cases for the base image: build (or reuse) it, list images, report its status."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cloche.host import image_build
from cloche.model.config import ClocheConfig, ImageConfig, with_overrides
from cloche.model.errors import ClocheError, HostFailure
from cloche.render import image as recipe
from cloche.runtime import images as lxd_images
from cloche.runtime.images import ImageInfo
from cloche.runtime.lxd import Lxd

__all__ = ["ImageInfo", "ImageResult", "build_image", "image_status", "list_images"]


@dataclass(frozen=True)
class ImageResult:
    """The outcome of build_image."""

    alias: str
    fingerprint: str
    cache_key: str
    built: bool
    imported: bool
    seconds: float


def _no_progress(message: str) -> None:
    del message


def _image_config(
    config: ClocheConfig, release: str | None, extra_packages: Sequence[str]
) -> ImageConfig:
    overrides: dict[str, object] = {}
    if release is not None:
        overrides["image.release"] = release
    if extra_packages:
        overrides["image.packages"] = [*config.image.packages, *extra_packages]
    if not overrides:
        return config.image
    return with_overrides(config, overrides).image


def _build_request(image: ImageConfig, cache_key: str) -> image_build.BuildRequest:
    return image_build.BuildRequest(
        cache_key=cache_key,
        release=image.release,
        mirror=image.mirror,
        packages=recipe.image_packages(image.packages),
        apt_sources=recipe.apt_sources(image.release, image.mirror),
        files=[(file.path, file.content, file.mode) for file in recipe.rootfs_files()],
        symlinks=recipe.ROOTFS_SYMLINKS,
        masked_units=recipe.MASKED_UNITS,
        enabled_units=recipe.ENABLED_UNITS,
        metadata_yaml=recipe.metadata_yaml(
            architecture=image_build.host_architecture(),
            creation_date=int(time.time()),
            release=image.release,
            cache_key=cache_key,
        ),
        templates=recipe.template_files(),
    )


def build_image(
    config: ClocheConfig,
    *,
    state_dir: Path,
    release: str | None = None,
    extra_packages: Sequence[str] = (),
    progress: Callable[[str], None] = _no_progress,
) -> ImageResult:
    """Make the alias point at an image built from the recipe, building only what is missing."""
    started = time.monotonic()
    image = _image_config(config, release, extra_packages)
    cache_key = recipe.image_cache_key(image.release, image.packages)
    alias = recipe.image_alias(image.release)
    lxd = Lxd(config.lxd.socket)

    def result(fingerprint: str, *, built: bool, imported: bool) -> ImageResult:
        return ImageResult(
            alias=alias,
            fingerprint=fingerprint,
            cache_key=cache_key,
            built=built,
            imported=imported,
            seconds=time.monotonic() - started,
        )

    current = lxd_images.find_image_by_alias(lxd, alias)
    if current is not None and current.cache_key == cache_key:
        progress(f"{alias} is up to date ({current.short_fingerprint}, key {cache_key})")
        return result(current.fingerprint, built=False, imported=False)

    entry = image_build.cached_image(state_dir, cache_key)
    built = entry is None
    if entry is None:
        image_build.check_release(image.release)
        entry = image_build.build_into_cache(state_dir, _build_request(image, cache_key), progress)
    else:
        progress(f"reusing the cached build {entry.directory}")

    fingerprint = image_build.split_image_fingerprint(entry)
    imported = lxd_images.find_image(lxd, fingerprint) is None
    if imported:
        progress(f"importing into LXD as {alias}")
        try:
            fingerprint = lxd_images.import_split_image(
                lxd, entry.metadata_path, entry.rootfs_path
            ).fingerprint
        except HostFailure:
            # A build running at the same time may have imported the same tarballs first.
            if lxd_images.find_image(lxd, fingerprint) is None:
                raise
            imported = False
    description = f"cloche base image, Debian {image.release} (key {cache_key})"
    lxd_images.point_alias(lxd, alias, fingerprint, description)
    return result(fingerprint, built=built, imported=imported)


def list_images(config: ClocheConfig) -> list[ImageInfo]:
    """Every image LXD holds, newest first."""
    return lxd_images.list_images(Lxd(config.lxd.socket))


def image_status(config: ClocheConfig, state_dir: Path) -> tuple[bool, str]:
    """Whether the configured base image is in LXD, as a line for 'cloche host status'."""
    image = config.image
    alias = recipe.image_alias(image.release)
    try:
        current = lxd_images.find_image_by_alias(Lxd(config.lxd.socket), alias)
    except ClocheError as error:
        return False, f"{alias}: {error}"
    if current is None:
        cached = image_build.cached_image(
            state_dir, recipe.image_cache_key(image.release, image.packages)
        )
        hint = " (a cached build exists)" if cached is not None else ""
        return False, f"no image {alias}{hint}; run 'cloche image build'"
    line = f"{alias}: {current.short_fingerprint}"
    if current.cache_key != recipe.image_cache_key(image.release, image.packages):
        line += " (built from another recipe or package list; run 'cloche image build')"
    return True, line
