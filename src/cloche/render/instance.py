"""Pure: LXD request bodies of a tenant's project, security profiles, template and environments."""

from __future__ import annotations

import re
from typing import Any

from cloche.model.errors import Invalid
from cloche.model.instances import (
    AUTOSTART_KEY,
    OWNER_KEY,
    ROLE_ENVIRONMENT,
    ROLE_KEY,
    ROLE_TEMPLATE,
    limits_config,
    sized_root,
)
from cloche.model.limits import GIB, MIB, SECURITY_PROFILES, Limits, ProjectQuotas
from cloche.model.names import check_environment_name, check_user_name
from cloche.model.units import format_size
from cloche.render.lxd import MANAGED_MARK

PROJECT_PREFIX = "cloche-"
TEMPLATE_PREFIX = "tmpl-"
TEMPLATE_PROFILE = "standard"
STRICT_PROCESSES = 256

# The template lives in the tenant's project, so LXD counts it against the project's limits; the
# project gets exactly this much on top of the user's quotas, which stay what the user was given.
TEMPLATE_LIMITS = Limits(cpu=1, memory_bytes=512 * MIB, disk_bytes=4 * GIB, processes=256)

_USER = re.compile(r"[a-z][a-z0-9-]{0,31}")
# LXD instance names are hostnames: the environment's hostname is its name.
_INSTANCE = re.compile(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?")


def project_name(user: str) -> str:
    """The LXD project holding a user's environments, e.g. cloche-alice."""
    return PROJECT_PREFIX + check_user_name(user)


def user_of_project(project: str) -> str | None:
    """The user a cloche project belongs to, or None for a project cloche does not name."""
    if not project.startswith(PROJECT_PREFIX):
        return None
    user = project.removeprefix(PROJECT_PREFIX)
    return user if _USER.fullmatch(user) and not user.endswith("-") else None


def template_name(image_alias: str) -> str:
    """The name of a user's template instance for an image, e.g. tmpl-cloche-bookworm."""
    slug = re.sub(r"[^a-z0-9]+", "-", image_alias.lower()).strip("-")
    if not slug:
        raise Invalid(f"Image alias {image_alias!r} has no letters or digits; name the image.")
    return (TEMPLATE_PREFIX + slug)[:63].rstrip("-")


def project_request(user: str, quotas: ProjectQuotas, bridge: str) -> dict[str, Any]:
    """The POST /1.0/projects body of a user's project: restricted, with the user's quotas."""
    docker = quotas.docker
    return {
        "name": project_name(user),
        "description": f"{MANAGED_MARK}: environments of {user}",
        "config": {
            # Images come from the default project, where cloche imports them once.
            "features.images": "false",
            "features.profiles": "true",
            # LXD's own default for a new project, written out so a re-read compares equal.
            "features.storage.volumes": "true",
            "limits.containers": str(quotas.environments + 1),
            "limits.virtual-machines": "0",
            "limits.cpu": str(quotas.cpu + TEMPLATE_LIMITS.cpu),
            "limits.memory": format_size(quotas.memory_bytes + TEMPLATE_LIMITS.memory_bytes),
            "limits.disk": format_size(quotas.disk_bytes + TEMPLATE_LIMITS.disk_bytes),
            "limits.processes": str(quotas.processes + TEMPLATE_LIMITS.processes),
            "restricted": "true",
            "restricted.backups": "allow",
            "restricted.snapshots": "allow",
            # Raw TCP/UDP routes are proxy devices.
            "restricted.devices.proxy": "allow",
            "restricted.networks.access": bridge,
            "restricted.containers.privilege": "isolated",
            "restricted.containers.nesting": "allow" if docker else "block",
            "restricted.containers.interception": "allow" if docker else "block",
            # LXD 5.0.2 counts security.idmap.base/size as low-level keys, and checks a profile
            # against the container and the VM lists both; VMs are limited to 0 above.
            "restricted.containers.lowlevel": "allow",
            "restricted.virtual-machines.lowlevel": "allow",
            OWNER_KEY: user,
        },
    }


def _devices(pool: str, bridge: str) -> dict[str, dict[str, str]]:
    return {
        "root": {"type": "disk", "path": "/", "pool": pool},
        "eth0": {"type": "nic", "network": bridge, "name": "eth0"},
    }


def security_profile_requests(
    uid_base: int,
    uid_size: int,
    pool: str,
    bridge: str,
    default_processes: int = 512,
    *,
    docker: bool = True,
) -> list[dict[str, Any]]:
    """The security profiles in a user's project (docker only when the user may run Docker)."""
    base_config = {
        "security.privileged": "false",
        "security.idmap.isolated": "true",
        "security.idmap.base": str(uid_base),
        "security.idmap.size": str(uid_size),
        "security.nesting": "false",
        "limits.processes": str(default_processes),
        "boot.autostart": "true",
    }
    profiles: dict[str, dict[str, str]] = {
        "standard": base_config,
        "docker": {
            **base_config,
            # Docker mounts its own proc and sysfs for each container it runs.
            "security.nesting": "true",
            "security.syscalls.intercept.mknod": "true",
            "security.syscalls.intercept.setxattr": "true",
        },
        "strict": {
            **base_config,
            "limits.processes": str(min(default_processes, STRICT_PROCESSES)),
            # No user namespaces inside: unshare -r, rootless containers and their mounts fail.
            "linux.sysctl.user.max_user_namespaces": "0",
            "security.devlxd": "false",
            "security.syscalls.deny_compat": "true",
        },
    }
    descriptions = {
        "standard": "unprivileged, own uid range, no nesting",
        "docker": "standard plus nesting for Docker and Compose inside",
        "strict": "standard without user namespaces, /dev/lxd or 32-bit syscalls",
    }
    return [
        {
            "name": name,
            "description": f"{MANAGED_MARK}: {descriptions[name]}",
            "config": profiles[name],
            "devices": _devices(pool, bridge),
        }
        for name in SECURITY_PROFILES
        if docker or name != "docker"
    ]


def root_device(pool: str, disk_bytes: int) -> dict[str, str]:
    """The instance's own root disk device with its size (required in a project with limits)."""
    return sized_root({"type": "disk", "path": "/", "pool": pool}, disk_bytes)


def instance_request(
    name: str,
    *,
    profile: str,
    limits: Limits,
    user: str,
    pool: str,
    image_alias: str | None = None,
    source_instance: str | None = None,
) -> dict[str, Any]:
    """The POST /1.0/instances body of an environment, from an image or a copy of an instance."""
    check_environment_name(name)
    check_user_name(user)
    if profile not in SECURITY_PROFILES:
        raise Invalid(
            f"Security profile {profile!r} does not exist; use one of "
            f"{', '.join(SECURITY_PROFILES)}."
        )
    if (image_alias is None) == (source_instance is None):
        raise Invalid("Give an environment exactly one source: an image alias or an instance.")
    source: dict[str, Any]
    if image_alias is not None:
        source = {"type": "image", "alias": image_alias}
    else:
        # A copy of the tenant's template: same idmap, so LXD does not remap the files.
        source = {"type": "copy", "source": source_instance, "instance_only": True}
    return {
        "name": name,
        "type": "container",
        "source": source,
        # Written out in a copy too: LXD checks project limits against the request alone.
        "profiles": [profile],
        "config": {
            **limits_config(limits),
            # Fail closed: LXD never starts an environment at boot (a copy would otherwise
            # inherit the template's value, and unset means "as before the reboot"); the
            # daemon starts those that should run once the firewall is loaded.
            AUTOSTART_KEY: "false",
            OWNER_KEY: user,
            ROLE_KEY: ROLE_ENVIRONMENT,
        },
        "devices": {"root": root_device(pool, limits.disk_bytes)},
    }


def template_request(image_alias: str, user: str, pool: str) -> dict[str, Any]:
    """The POST /1.0/instances body of a user's template: the image, shifted to the user's ids."""
    check_user_name(user)
    return {
        "name": template_name(image_alias),
        "type": "container",
        "source": {"type": "image", "alias": image_alias},
        "profiles": [TEMPLATE_PROFILE],
        "config": {
            **limits_config(TEMPLATE_LIMITS),
            # Started once by cloche to shift its files, never by LXD at boot.
            "boot.autostart": "false",
            OWNER_KEY: user,
            ROLE_KEY: ROLE_TEMPLATE,
        },
        "devices": {"root": root_device(pool, TEMPLATE_LIMITS.disk_bytes)},
    }
