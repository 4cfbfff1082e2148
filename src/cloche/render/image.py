"""The base image recipe: packages, files written into the rootfs, LXD metadata and cache key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import yaml

from cloche.model.images import KEY_PROPERTY

# Bump whenever anything below changes what ends up in the image (packages, files, units), so
# every host builds a new image instead of reusing a cached one made from the old recipe.
RECIPE_VERSION = 1

ALIAS_PREFIX = "cloche/"
RECIPE_PROPERTY = "cloche.recipe"

# udev is required: without it systemd-networkd never configures eth0. systemd-resolved gives
# DNS from DHCP, so the image does not bake in the bridge's address and keeps working when the
# host's subnet changes (a static resolv.conf would tie every image to one network config).
BASE_PACKAGES: tuple[str, ...] = (
    "ca-certificates",
    "curl",
    "dbus",
    "iproute2",
    "openssh-server",
    "python3",
    "sudo",
    "systemd",
    "systemd-resolved",
    "systemd-sysv",
    "udev",
)

# wait-online fails when any link is slow to configure, and binfmt cannot register formats in an
# unprivileged container; either one leaves the system 'degraded' instead of 'running'. The
# e2scrub units check LVM-backed ext4, which a container never has: boot time for nothing.
MASKED_UNITS: tuple[str, ...] = (
    "systemd-networkd-wait-online.service",
    "systemd-binfmt.service",
    "e2scrub_reap.service",
    "e2scrub_all.timer",
)

SSH_HOST_KEYS_UNIT = "cloche-ssh-host-keys.service"
ENABLED_UNITS: tuple[str, ...] = (
    "systemd-networkd.service",
    "systemd-resolved.service",
    SSH_HOST_KEYS_UNIT,
)

# A copy of an environment (restore as new, a tenant's template) must not share its identity;
# LXD writes this marker on copy and the first-boot unit then makes new host keys.
NEW_IDENTITY_MARKER = "/etc/cloche/new-identity"

# Symlinks the recipe makes (path in the image to target): resolv.conf follows resolved's stub, and
# D-Bus reads the per-instance machine-id instead of the one dbus generated during the bootstrap.
ROOTFS_SYMLINKS: Mapping[str, str] = {
    "/etc/resolv.conf": "../run/systemd/resolve/stub-resolv.conf",
    "/var/lib/dbus/machine-id": "/etc/machine-id",
}


@dataclass(frozen=True)
class RootfsFile:
    """One file the recipe writes into the rootfs (path is absolute inside the image)."""

    path: str
    content: str
    mode: int = 0o644


def normalized_packages(packages: Iterable[str]) -> tuple[str, ...]:
    """The extra packages sorted, without duplicates and without ones the base already has."""
    return tuple(sorted(set(packages) - set(BASE_PACKAGES)))


def image_packages(extra_packages: Iterable[str]) -> tuple[str, ...]:
    """Every package debootstrap is asked to include: the base ones plus the extra ones."""
    return tuple(sorted(set(BASE_PACKAGES) | set(extra_packages)))


def image_cache_key(
    release: str, packages: Iterable[str], recipe_version: int = RECIPE_VERSION
) -> str:
    """A short content key: equal for the same release, extra packages and recipe version."""
    canonical = json.dumps(
        {
            "release": release,
            "packages": list(normalized_packages(packages)),
            "recipe": recipe_version,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def image_alias(release: str) -> str:
    """The LXD alias environments are created from, e.g. cloche/bookworm."""
    return f"{ALIAS_PREFIX}{release}"


def security_mirror(mirror: str) -> str | None:
    """The security archive next to a Debian mirror, or None when it cannot be derived."""
    base = mirror.rstrip("/")
    if base.endswith("/debian"):
        return base + "-security"
    return None


def apt_sources(release: str, mirror: str) -> str:
    """The image's sources.list: the release, its updates and (when known) its security pocket."""
    base = mirror.rstrip("/")
    lines = [
        f"deb {base} {release} main",
        f"deb {base} {release}-updates main",
    ]
    security = security_mirror(mirror)
    if security is not None:
        lines.append(f"deb {security} {release}-security main")
    return "\n".join(lines) + "\n"


NETWORK_FILE = """\
[Match]
Name=eth0

[Network]
DHCP=yes

[DHCPv4]
UseDomains=true
# The hostname is the instance name, written by LXD; an unprivileged container may not change it.
UseHostname=false
"""

JOURNALD_FILE = """\
[Journal]
# The default cap is 10% of the file system, and each environment sees the whole shared pool:
# hundreds of environments could each keep gigabytes of logs.
SystemMaxUse=64M
"""

RESOLVED_FILE = """\
[Resolve]
# Environments of different tenants share a bridge: no multicast name answering between them.
LLMNR=no
MulticastDNS=no
# Only the DNS server the bridge hands out over DHCP; never fall back to public resolvers, which
# would bypass an environment's egress allowlist.
FallbackDNS=
"""

SSHD_FILE = """\
# cloche: keys only. Users reach environments through the host's jump account with their keys.
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
# Only the host keys the first-boot unit makes (no RSA: see cloche-ssh-host-keys.service).
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
"""

SSH_HOST_KEYS_SERVICE = f"""\
[Unit]
Description=Give this environment its own SSH host keys
Before=ssh.service
ConditionPathExists=|!/etc/ssh/ssh_host_ed25519_key
ConditionPathExists=|{NEW_IDENTITY_MARKER}

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub'
# Not 'ssh-keygen -A': its RSA key took 0.77 s of every first boot; ed25519 and ECDSA take ms.
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key
ExecStart=/usr/bin/ssh-keygen -q -t ecdsa -N "" -f /etc/ssh/ssh_host_ecdsa_key
ExecStart=/bin/rm -f {NEW_IDENTITY_MARKER}

[Install]
WantedBy=multi-user.target ssh.service
"""

HOSTNAME_TEMPLATE = "{{ container.name }}\n"

HOSTS_TEMPLATE = """\
127.0.0.1\tlocalhost
127.0.1.1\t{{ container.name }}

::1\tlocalhost ip6-localhost ip6-loopback
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""

# An empty machine-id makes systemd generate a fresh one at the next boot.
MACHINE_ID_TEMPLATE = ""

NEW_IDENTITY_TEMPLATE = "written by LXD when this environment was copied\n"


def rootfs_files() -> tuple[RootfsFile, ...]:
    """Every file the recipe writes into the bootstrapped and updated rootfs."""
    return (
        RootfsFile("/etc/systemd/network/10-eth0.network", NETWORK_FILE),
        RootfsFile("/etc/systemd/journald.conf.d/cloche.conf", JOURNALD_FILE),
        RootfsFile("/etc/systemd/resolved.conf.d/cloche.conf", RESOLVED_FILE),
        RootfsFile("/etc/ssh/sshd_config.d/cloche.conf", SSHD_FILE),
        RootfsFile(f"/etc/systemd/system/{SSH_HOST_KEYS_UNIT}", SSH_HOST_KEYS_SERVICE),
        RootfsFile("/etc/hostname", "localhost\n"),
        RootfsFile("/etc/hosts", HOSTS_TEMPLATE.replace("{{ container.name }}", "localhost")),
        # Empty, so each instance gets its own id (and so its own DHCP client id) at first boot.
        RootfsFile("/etc/machine-id", MACHINE_ID_TEMPLATE, mode=0o444),
    )


@dataclass(frozen=True)
class MetadataTemplate:
    """An LXD template: a file LXD renders into the instance on the given events."""

    path: str
    template_name: str
    text: str
    when: tuple[str, ...]


METADATA_TEMPLATES: tuple[MetadataTemplate, ...] = (
    MetadataTemplate("/etc/hostname", "hostname.tpl", HOSTNAME_TEMPLATE, ("create", "copy")),
    MetadataTemplate("/etc/hosts", "hosts.tpl", HOSTS_TEMPLATE, ("create", "copy")),
    MetadataTemplate("/etc/machine-id", "machine-id.tpl", MACHINE_ID_TEMPLATE, ("copy",)),
    MetadataTemplate(NEW_IDENTITY_MARKER, "new-identity.tpl", NEW_IDENTITY_TEMPLATE, ("copy",)),
)


def template_files() -> Mapping[str, str]:
    """The templates/ directory of the image's metadata: file name to text."""
    return {template.template_name: template.text for template in METADATA_TEMPLATES}


def metadata_yaml(*, architecture: str, creation_date: int, release: str, cache_key: str) -> str:
    """The image's metadata.yaml (architecture as LXD names it, e.g. x86_64)."""
    document = {
        "architecture": architecture,
        "creation_date": creation_date,
        "properties": {
            "architecture": architecture,
            "description": f"cloche base image, Debian {release}",
            "os": "debian",
            "release": release,
            "variant": "cloche",
            KEY_PROPERTY: cache_key,
            RECIPE_PROPERTY: str(RECIPE_VERSION),
        },
        "templates": {
            template.path: {
                "when": list(template.when),
                "create_only": False,
                "template": template.template_name,
                "properties": {},
            }
            for template in METADATA_TEMPLATES
        },
    }
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
