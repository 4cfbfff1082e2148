"""Use cases for the base image: build (or reuse) it, list images, report its status."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cloche.core.ports import AptSources, ImagePorts
from cloche.model.config import ClocheConfig, ImageConfig, with_overrides
from cloche.model.errors import ClocheError, HostFailure, Invalid
from cloche.model.images import BuildRequest, ImageInfo
from cloche.model.paths import CONFIG_PATH
from cloche.render import image as recipe
from cloche.render.apt_sources import debian_mirror

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


def _mirror(image: ImageConfig, apt_sources: AptSources) -> str:
    if image.mirror is not None:
        return image.mirror
    found = debian_mirror(apt_sources.sources_files(), apt_sources.architecture())
    if found is None:
        raise Invalid(
            "This host's apt sources name no Debian archive to bootstrap the image from; set "
            f"image.mirror in {CONFIG_PATH} to a Debian mirror's URL and build again."
        )
    return found


def _build_request(
    image: ImageConfig, mirror: str, cache_key: str, architecture: str
) -> BuildRequest:
    return BuildRequest(
        cache_key=cache_key,
        release=image.release,
        mirror=mirror,
        packages=recipe.image_packages(image.packages),
        apt_sources=recipe.apt_sources(image.release, mirror),
        files=[(file.path, file.content, file.mode) for file in recipe.rootfs_files()],
        symlinks=recipe.ROOTFS_SYMLINKS,
        masked_units=recipe.MASKED_UNITS,
        enabled_units=recipe.ENABLED_UNITS,
        metadata_yaml=recipe.metadata_yaml(
            architecture=architecture,
            creation_date=int(time.time()),
            release=image.release,
            cache_key=cache_key,
        ),
        templates=recipe.template_files(),
    )


def build_image(
    config: ClocheConfig,
    ports: ImagePorts,
    *,
    release: str | None = None,
    extra_packages: Sequence[str] = (),
    progress: Callable[[str], None] = _no_progress,
) -> ImageResult:
    """Make the alias point at an image built from the recipe, building only what is missing."""
    started = time.monotonic()
    image = _image_config(config, release, extra_packages)
    mirror = _mirror(image, ports.apt_sources)
    cache_key = recipe.image_cache_key(image.release, image.packages)
    alias = recipe.image_alias(image.release)
    builder, store = ports.builder, ports.store

    def result(fingerprint: str, *, built: bool, imported: bool) -> ImageResult:
        return ImageResult(
            alias=alias,
            fingerprint=fingerprint,
            cache_key=cache_key,
            built=built,
            imported=imported,
            seconds=time.monotonic() - started,
        )

    current = store.find_by_alias(alias)
    if current is not None and current.cache_key == cache_key:
        progress(f"{alias} is up to date ({current.short_fingerprint}, key {cache_key})")
        return result(current.fingerprint, built=False, imported=False)

    entry = builder.cached_image(cache_key)
    built = entry is None
    if entry is None:
        builder.check_release(image.release)
        request = _build_request(image, mirror, cache_key, builder.architecture())
        entry = builder.build(request, progress)
    else:
        progress(f"reusing the cached build {entry.directory}")

    fingerprint = builder.fingerprint(entry)
    imported = store.find(fingerprint) is None
    if imported:
        progress(f"importing into LXD as {alias}")
        try:
            fingerprint = store.import_split_image(
                entry.metadata_path, entry.rootfs_path
            ).fingerprint
        except HostFailure:
            # A build running at the same time may have imported the same tarballs first.
            if store.find(fingerprint) is None:
                raise
            imported = False
    description = f"cloche base image, Debian {image.release} (key {cache_key})"
    store.point_alias(alias, fingerprint, description)
    return result(fingerprint, built=built, imported=imported)


def list_images(ports: ImagePorts) -> list[ImageInfo]:
    """Every image LXD holds, newest first."""
    return ports.store.list_images()


def image_status(config: ClocheConfig, ports: ImagePorts) -> tuple[bool, str]:
    """Whether the configured base image is in LXD, as a line for 'cloche host status'."""
    image = config.image
    alias = recipe.image_alias(image.release)
    try:
        current = ports.store.find_by_alias(alias)
    except ClocheError as error:
        return False, f"{alias}: {error}"
    if current is None:
        cached = ports.builder.cached_image(recipe.image_cache_key(image.release, image.packages))
        hint = " (a cached build exists)" if cached is not None else ""
        return False, f"no image {alias}{hint}; run 'cloche image build'"
    line = f"{alias}: {current.short_fingerprint}"
    if current.cache_key != recipe.image_cache_key(image.release, image.packages):
        line += " (built from another recipe or package list; run 'cloche image build')"
    return True, line
