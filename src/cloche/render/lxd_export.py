"""Pure: what an LXD export (an uncompressed instance backup tarball) says about its instance.

An export holds backup/index.yaml, then backup/container/backup.yaml (the instance's config,
devices and profiles), then the root file system; only backup.yaml is read here.
"""

from __future__ import annotations

import tarfile
from typing import IO, Any, cast

import yaml

from cloche.model.errors import Invalid
from cloche.model.limits import Limits
from cloche.model.records import PROFILES, Profile
from cloche.model.units import parse_size

INSTANCE_FILE = "backup.yaml"


def backup_yaml(archive: IO[bytes]) -> bytes | None:
    """The first backup.yaml in an uncompressed export read from archive; None if it has none."""
    try:
        with tarfile.open(fileobj=archive, mode="r:") as tarball:
            for member in tarball:
                if member.name.endswith(INSTANCE_FILE) and member.isfile():
                    stream = tarball.extractfile(member)
                    if stream is not None:
                        return stream.read()
    except tarfile.TarError:
        return None  # not a tarball (or cut short before its backup.yaml): no export
    return None


def instance_facts(text: bytes | None, archive_name: str) -> dict[str, Any]:
    """The instance's config, devices and profiles from an export's backup.yaml."""
    if text is not None:
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            raise Invalid(
                f"The backup {archive_name} has a damaged backup.yaml ({error}); restore "
                "another backup."
            ) from None
        if not isinstance(data, dict):
            data = {}
        instance = data.get("container") or data.get("instance") or {}
        if isinstance(instance, dict):
            return instance
    raise Invalid(f"The backup {archive_name} holds no backup.yaml; it is not an LXD export.")


def export_limits(facts: dict[str, Any]) -> tuple[Limits, Profile]:
    """The environment's limits and security profile as its export recorded them."""
    config = facts.get("config") or {}
    root = (facts.get("devices") or {}).get("root") or {}
    profiles = facts.get("profiles") or ["standard"]
    try:
        limits = Limits(
            cpu=int(config["limits.cpu"]),
            memory_bytes=parse_size(str(config["limits.memory"])),
            disk_bytes=parse_size(str(root["size"])),
            processes=int(config["limits.processes"]),
        )
    except (KeyError, ValueError) as error:
        raise Invalid(
            f"The backup lacks the environment's limits ({error}); restore it in place of an "
            "environment that has a record."
        ) from None
    profile = str(profiles[0])
    if profile not in PROFILES:
        raise Invalid(f"The backup's profile {profile!r} is not one of cloche's; restore in place.")
    return limits, cast(Profile, profile)
