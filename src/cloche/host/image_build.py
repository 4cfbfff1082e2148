"""Build the base image's tarballs with debootstrap into the cache, all or nothing."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from cloche.host.files import write_atomically
from cloche.host.run import run
from cloche.model.errors import HostFailure, Invalid
from cloche.model.images import METADATA_TARBALL, ROOTFS_TARBALL, BuildRequest, CachedImage
from cloche.model.text import output_tail

DEBOOTSTRAP_SCRIPTS = Path("/usr/share/debootstrap/scripts")

DEBOOTSTRAP_TIMEOUT_SECONDS = 1800.0
PACK_TIMEOUT_SECONDS = 900.0
_BUILD_PREFIX = ".build-"


def host_architecture() -> str:
    """The host's architecture as LXD names it (x86_64, aarch64)."""
    return platform.machine()


def images_directory(state_dir: Path) -> Path:
    """Where cache entries live: one directory per cache key."""
    return state_dir / "images"


def cached_image(state_dir: Path, cache_key: str) -> CachedImage | None:
    """The complete cache entry for cache_key, or None when there is none."""
    entry = CachedImage(images_directory(state_dir) / cache_key, cache_key)
    if entry.metadata_path.is_file() and entry.rootfs_path.is_file():
        return entry
    return None


def split_image_fingerprint(entry: CachedImage) -> str:
    """The fingerprint LXD gives a split image: sha256 of the metadata then the rootfs tarball."""
    digest = hashlib.sha256()
    for path in (entry.metadata_path, entry.rootfs_path):
        with path.open("rb") as stream:
            while chunk := stream.read(1024 * 1024):
                digest.update(chunk)
    return digest.hexdigest()


def check_release(release: str) -> None:
    """Raise Invalid when debootstrap does not know how to bootstrap release."""
    if not (DEBOOTSTRAP_SCRIPTS / release).exists():
        raise Invalid(
            f"debootstrap does not know the release {release!r}; use a Debian release name "
            "such as bookworm."
        )


@contextlib.contextmanager
def _build_lock(directory: Path) -> Iterator[None]:
    # Two builds at once would race on the same key; the second waits, then finds the first's.
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _mount_points_under(path: Path) -> list[str]:
    resolved = str(path.resolve())
    points = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == resolved or point.startswith(resolved + "/"):
                points.append(point)
    return points


def _processes_using(path: Path) -> list[int]:
    prefix = str(path.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            places = [os.readlink(entry / "root"), os.readlink(entry / "cwd")]
        except OSError:
            continue
        if any(text == prefix or text.startswith(prefix + "/") for text in arguments + places):
            found.append(int(entry.name))
    return found


def _stop_processes_using(path: Path) -> None:
    # A build killed mid-way leaves debootstrap's children (dpkg in a chroot, wget) running and
    # writing into its directory; they must be gone before the directory is deleted.
    for _ in range(10):
        pids = _processes_using(path)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    raise HostFailure(f"Processes still use {path}; stop them and delete it by hand.")


def _remove_build_directory(path: Path) -> None:
    _stop_processes_using(path)
    # debootstrap mounts /proc, /sys (and may bind /dev) inside the target; deleting through a
    # mount left by a killed build would delete the host's own files, so unmount first.
    for point in sorted(_mount_points_under(path), key=len, reverse=True):
        run(["umount", "--lazy", point], check=False)
    if _mount_points_under(path):
        raise HostFailure(
            f"{path} still has file systems mounted inside; unmount them and delete it by hand."
        )
    shutil.rmtree(path, ignore_errors=True)


def _remove_stale_builds(directory: Path) -> None:
    for stale in directory.glob(f"{_BUILD_PREFIX}*"):
        if stale.is_dir():
            _remove_build_directory(stale)


def _inside(rootfs: Path, path_in_image: str) -> Path:
    return rootfs / path_in_image.lstrip("/")


def _debootstrap(request: BuildRequest, rootfs: Path) -> None:
    result = run(
        [
            "debootstrap",
            "--variant=minbase",
            "--components=main",
            f"--include={','.join(request.packages)}",
            request.release,
            str(rootfs),
            request.mirror,
        ],
        timeout=DEBOOTSTRAP_TIMEOUT_SECONDS,
        check=False,
    )
    if result.ok:
        return
    output = result.stderr + result.stdout
    for line in output.splitlines():
        if "Couldn't find these debs" in line:
            missing = line.split(":", 2)[-1].strip()
            raise Invalid(
                f"Debian {request.release} has no package(s) {missing}; check the names "
                "with 'apt-cache search' and retry."
            )
    tail = output_tail(output, lines=3)
    raise HostFailure(
        f"debootstrap of {request.release} from {request.mirror} failed ({tail}); check that "
        "the mirror is reachable and retry."
    )


def _apply_updates(request: BuildRequest, rootfs: Path) -> None:
    # debootstrap installs the release as published; updates and security fixes since then come
    # from the image's own sources.list, with the host's resolver while resolved is not running.
    write_atomically(rootfs / "etc/apt/sources.list", request.apt_sources)
    resolv_conf = rootfs / "etc/resolv.conf"
    resolv_conf.unlink(missing_ok=True)
    shutil.copyfile("/etc/resolv.conf", resolv_conf)
    environment = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "DEBIAN_FRONTEND": "noninteractive",
        "LC_ALL": "C.UTF-8",
    }
    run(["chroot", str(rootfs), "apt-get", "-q", "update"], env=environment, timeout=600)
    run(
        [
            "chroot",
            str(rootfs),
            "apt-get",
            "-q",
            "-y",
            "-o",
            "Dpkg::Options::=--force-confdef",
            "-o",
            "Dpkg::Options::=--force-confold",
            "dist-upgrade",
        ],
        env=environment,
        timeout=DEBOOTSTRAP_TIMEOUT_SECONDS,
    )


def _apply_recipe(request: BuildRequest, rootfs: Path) -> None:
    for path_in_image, content, mode in request.files:
        write_atomically(_inside(rootfs, path_in_image), content, mode)
    for path_in_image, target in request.symlinks.items():
        link = _inside(rootfs, path_in_image)
        link.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to(target)
    if request.masked_units:
        run(["systemctl", f"--root={rootfs}", "mask", *request.masked_units])
    if request.enabled_units:
        run(["systemctl", f"--root={rootfs}", "enable", *request.enabled_units])
    for host_key in _inside(rootfs, "/etc/ssh").glob("ssh_host_*"):
        host_key.unlink()
    # Caches, logs and device nodes from the bootstrap: dead weight, and /dev is LXD's to fill.
    for directory in ("var/lib/apt/lists", "var/cache/apt", "dev", "tmp", "var/tmp"):
        _empty_directory(rootfs / directory)
    _inside(rootfs, "/var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    _inside(rootfs, "/var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
    bootstrap_logs = [
        rootfs / "var/log" / name for name in ("bootstrap.log", "dpkg.log", "alternatives.log")
    ]
    for log_path in [*bootstrap_logs, *(rootfs / "var/log/apt").glob("*")]:
        with contextlib.suppress(FileNotFoundError):
            log_path.unlink()


def _empty_directory(directory: Path) -> None:
    if not directory.is_dir() or _mount_points_under(directory):
        return
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _pack(request: BuildRequest, rootfs: Path, workspace: Path, output: Path) -> None:
    run(
        [
            "tar",
            "--numeric-owner",
            "--xattrs",
            "--xattrs-include=*",
            "--acls",
            "--use-compress-program=zstd -T0 -q",
            "-C",
            str(rootfs),
            "-cf",
            str(output / ROOTFS_TARBALL),
            ".",
        ],
        timeout=PACK_TIMEOUT_SECONDS,
    )
    metadata = workspace / "metadata"
    write_atomically(metadata / "metadata.yaml", request.metadata_yaml)
    for name, text in request.templates.items():
        write_atomically(metadata / "templates" / name, text)
    run(
        [
            "tar",
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            "-C",
            str(metadata),
            "-cJf",
            str(output / METADATA_TARBALL),
            "metadata.yaml",
            "templates",
        ],
        timeout=PACK_TIMEOUT_SECONDS,
    )


def build_into_cache(
    state_dir: Path, request: BuildRequest, progress: Callable[[str], None]
) -> CachedImage:
    """Bootstrap, configure and pack the image; it appears in the cache only when complete."""
    directory = images_directory(state_dir)
    with _build_lock(directory):
        existing = cached_image(state_dir, request.cache_key)
        if existing is not None:
            return existing
        _remove_stale_builds(directory)
        workspace = Path(
            tempfile.mkdtemp(prefix=f"{_BUILD_PREFIX}{request.cache_key}-", dir=directory)
        )
        try:
            rootfs = workspace / "rootfs"
            output = workspace / "output"
            output.mkdir()
            progress(
                f"bootstrapping Debian {request.release} from {request.mirror} "
                "(about a minute or two)"
            )
            _debootstrap(request, rootfs)
            progress(f"applying {request.release}-updates and {request.release}-security")
            _apply_updates(request, rootfs)
            progress("configuring the root file system")
            _apply_recipe(request, rootfs)
            progress(f"packing {ROOTFS_TARBALL} and {METADATA_TARBALL}")
            _pack(request, rootfs, workspace, output)
            # The rename is the commit: a cache entry either has both tarballs or does not exist.
            output.rename(directory / request.cache_key)
        finally:
            _remove_build_directory(workspace)
    entry = cached_image(state_dir, request.cache_key)
    if entry is None:
        raise HostFailure(
            f"The image build left no complete cache entry in {directory}; run it again."
        )
    return entry


class DebootstrapImageBuilder:
    """The image builds of this host: debootstrap into the cache under state_dir."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def architecture(self) -> str:
        """The host's architecture as LXD names it (x86_64, aarch64)."""
        return host_architecture()

    def cached_image(self, cache_key: str) -> CachedImage | None:
        """The complete cache entry for cache_key, or None when there is none."""
        return cached_image(self.state_dir, cache_key)

    def check_release(self, release: str) -> None:
        """Raise Invalid when debootstrap does not know how to bootstrap release."""
        check_release(release)

    def build(self, request: BuildRequest, progress: Callable[[str], None]) -> CachedImage:
        """Bootstrap, configure and pack the image; it appears in the cache only when complete."""
        return build_into_cache(self.state_dir, request, progress)

    def fingerprint(self, entry: CachedImage) -> str:
        """The fingerprint LXD will give the entry's split image."""
        return split_image_fingerprint(entry)
