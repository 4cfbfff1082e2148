"""The schema of /etc/cloche/config.yaml: typed, documented, and strict about unknown keys."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from cloche.model import paths
from cloche.model.bans import networks, parse_duration
from cloche.model.errors import Invalid
from cloche.model.names import check_host_name
from cloche.model.units import format_size, parse_size

CONFIG_PATH = paths.CONFIG_PATH
MINIMUM_POOL_BYTES = 2 * 1024**3

_LXD_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")
_INTERFACE_NAME = re.compile(r"[a-z][a-z0-9-]{0,14}")
_DEBIAN_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
_RELEASE = re.compile(r"^[a-z]+$")


def _check_lxd_name(value: str) -> str:
    if not _LXD_NAME.fullmatch(value):
        raise ValueError(
            "must start with a lowercase letter and hold only lowercase letters, digits and '-'"
        )
    return value


def _check_interface_name(value: str) -> str:
    if not _INTERFACE_NAME.fullmatch(value):
        raise ValueError(
            "must be 1 to 15 characters: a lowercase letter, then lowercase letters, digits or '-'"
        )
    return value


def _check_size(value: str) -> str:
    try:
        size = parse_size(value)
    except Invalid as error:
        raise ValueError(str(error)) from None
    return format_size(size)


def _check_subnet(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as error:
        raise ValueError(
            f"{value!r} is not an IPv4 network such as 10.120.0.0/16 ({error})"
        ) from None
    if not network.is_private or network.is_loopback or network.is_link_local:
        raise ValueError(f"{value} is not a private range; use one inside 10.0.0.0/8")
    if not 8 <= network.prefixlen <= 24:
        raise ValueError(
            f"/{network.prefixlen} is outside /8 to /24; a host of many environments needs "
            "at least a /24"
        )
    return str(network)


def _check_network(value: str) -> str:
    try:
        return str(ipaddress.IPv4Network(value, strict=True))
    except ValueError as error:
        raise ValueError(
            f"{value!r} is not an IPv4 network such as 192.168.1.0/24 ({error})"
        ) from None


def _check_duration(value: str) -> str:
    try:
        parse_duration(value)
    except Invalid as error:
        raise ValueError(str(error).rstrip(".")) from None
    return value.strip()


def _check_any_network(value: str) -> str:
    try:
        (network,) = networks([value])
    except Invalid as error:
        raise ValueError(str(error).rstrip(".")) from None
    return str(network)


def _check_package(value: str) -> str:
    if not _DEBIAN_PACKAGE.fullmatch(value):
        raise ValueError(f"{value!r} is not a Debian package name")
    return value


LxdName = Annotated[str, AfterValidator(_check_lxd_name)]
InterfaceName = Annotated[str, AfterValidator(_check_interface_name)]
Size = Annotated[str, AfterValidator(_check_size)]
Subnet = Annotated[str, AfterValidator(_check_subnet)]
Network = Annotated[str, AfterValidator(_check_network)]
PackageName = Annotated[str, AfterValidator(_check_package)]
Duration = Annotated[str, AfterValidator(_check_duration)]
AnyNetwork = Annotated[str, AfterValidator(_check_any_network)]


def _check_host(value: str) -> str:
    try:
        return check_host_name(value, "The name")
    except Invalid as error:
        raise ValueError(str(error).rstrip(".")) from None


HostName = Annotated[str, AfterValidator(_check_host)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LxdConfig(_Strict):
    """How cloche reaches LXD (an Incus-compatible socket path may be given)."""

    socket: str = Field(default="/var/lib/lxd/unix.socket", description="LXD's unix socket.")


class StorageConfig(_Strict):
    """The storage pool environments live on."""

    pool: LxdName = Field(default="cloche", description="Name of the LXD storage pool.")
    driver: Literal["btrfs", "zfs"] = Field(
        default="btrfs", description="Copy-on-write driver for snapshots and clones."
    )
    source: Literal["loop", "device", "existing"] = Field(
        default="loop",
        description="loop: a file under LXD's directory; device: a block device or partition; "
        "existing: a pool LXD already has, used as it is.",
    )
    size: Size = Field(default="20GiB", description="Size of the loop file (source: loop).")
    device: str | None = Field(
        default=None, description="Block device or partition (source: device), e.g. /dev/vdb."
    )

    @model_validator(mode="after")
    def _source_fits(self) -> StorageConfig:
        if self.source == "device":
            if not self.device:
                raise ValueError("source 'device' needs 'device', e.g. device: /dev/vdb")
            if not self.device.startswith("/dev/"):
                raise ValueError(f"device {self.device!r} must be a path under /dev/")
        elif self.device is not None:
            raise ValueError(f"'device' is only used with source 'device', not {self.source!r}")
        if self.source == "loop" and parse_size(self.size) < MINIMUM_POOL_BYTES:
            raise ValueError(f"size {self.size} is too small; a pool needs at least 2GiB")
        return self


class NetworkConfig(_Strict):
    """The private NAT bridge environments are attached to."""

    bridge: InterfaceName = Field(default="clochebr0", description="Name of the LXD bridge.")
    subnet: Subnet = Field(
        default="10.120.0.0/16",
        description="Private IPv4 range of the bridge; the host takes its first address.",
    )
    ipv6: bool = Field(default=False, description="Give the bridge an IPv6 range too.")
    open_ranges: list[Network] = Field(
        default_factory=list,
        description="IPv4 networks environments may reach although they are closed by default "
        "(link-local, cloud metadata, the networks of the host's own interfaces), e.g. a LAN "
        "service they need.",
    )

    @property
    def gateway_cidr(self) -> str:
        """The bridge's own address with prefix, e.g. 10.120.0.1/16."""
        network = ipaddress.IPv4Network(self.subnet)
        return f"{network.network_address + 1}/{network.prefixlen}"


class ProfileConfig(_Strict):
    """The hardened base profile every environment starts from."""

    name: LxdName = Field(default="cloche", description="Name of the LXD profile.")
    processes: int = Field(
        default=512, ge=32, le=1_000_000, description="Default process limit per environment."
    )


class ImageConfig(_Strict):
    """The base image cloche builds offline with debootstrap."""

    release: Annotated[str, Field(pattern=_RELEASE.pattern)] = Field(
        default="bookworm", description="Debian release to bootstrap."
    )
    mirror: Annotated[str, Field(pattern=r"^https?://[^\s]+$")] | None = Field(
        default=None,
        description="Debian mirror to bootstrap from (default: the one in the host's apt sources).",
    )
    packages: list[PackageName] = Field(
        default_factory=list, description="Extra Debian packages in the image."
    )


class SshConfig(_Strict):
    """How people reach their environments: through the host's own sshd."""

    port: int = Field(
        default=22, ge=1, le=65535, description="Port of the host's sshd that 'ssh-config' names."
    )
    host: HostName | None = Field(
        default=None,
        description="Name or address people use for this host (default: its fully qualified name).",
    )
    emergency_keys: list[str] = Field(
        default_factory=list,
        description="Break-glass public keys sshd accepts for root, managed by cloche.",
    )


class BackupsConfig(_Strict):
    """Off-host backups: restic repositories (kept in a root-only secrets file) and retention."""

    default_repository: LxdName = Field(
        default="local",
        description="Repository that 'backup run' and the schedule use when none is named; "
        "'local' is the one 'host init' makes under /var/lib/cloche/backups/local.",
    )
    schedule: Literal["daily", "off"] = Field(
        default="daily",
        description="daily: the daemon backs up every environment once a day and then applies "
        "retention; off: only 'cloche backup run'.",
    )
    keep_daily: int = Field(
        default=7, ge=0, le=3650, description="Daily backups kept per environment."
    )
    keep_weekly: int = Field(
        default=4, ge=0, le=520, description="Weekly backups kept per environment."
    )
    keep_monthly: int = Field(
        default=6, ge=0, le=1200, description="Monthly backups kept per environment."
    )

    @model_validator(mode="after")
    def _keeps_something(self) -> BackupsConfig:
        if self.keep_daily + self.keep_weekly + self.keep_monthly == 0:
            raise ValueError("keep_daily, keep_weekly and keep_monthly are all 0; keep at least 1")
        return self


class SnapshotsConfig(_Strict):
    """The time machine: scheduled snapshots of every running environment, pruned by tier."""

    enabled: bool = Field(
        default=True,
        description="Take scheduled snapshots; false stops the scheduler (manual ones still work).",
    )
    quarter_hourly: int = Field(
        default=4, ge=0, le=10_000, description="15-minute snapshots kept per environment."
    )
    hourly: int = Field(default=24, ge=0, le=10_000, description="Hourly snapshots kept.")
    daily: int = Field(default=14, ge=0, le=10_000, description="Daily snapshots kept.")
    weekly: int = Field(default=0, ge=0, le=10_000, description="Weekly (ISO week) snapshots kept.")
    monthly: int = Field(default=3, ge=0, le=10_000, description="Monthly snapshots kept.")


class FirewallConfig(_Strict):
    """The host firewall (nftables table inet cloche): tenant isolation, egress, host ports."""

    mode: Literal["open", "protect"] = Field(
        default="open",
        description="open: the host's own input is left alone (environments are still fenced "
        "off from each other and from the host's management ports); protect: the host also drops "
        "unsolicited traffic except SSH, HTTP(S) and published ports.",
    )


class BansConfig(_Strict):
    """Brute-force defense: addresses that keep failing to sign in to sshd are dropped."""

    max_failures: int = Field(
        default=10,
        ge=1,
        le=1_000_000,
        description="Failed connections (each one that did not sign in, however many keys or "
        "passwords it tried) from one address within 'window' that ban it.",
    )
    window: Duration = Field(
        default="10m", description="How far back failures count: a number and s, m, h or d."
    )
    duration: Duration = Field(
        default="1h", description="How long a ban lasts ('cloche host bans --lift' ends it early)."
    )
    never: list[AnyNetwork] = Field(
        default_factory=list,
        description="IPv4 or IPv6 networks never banned, e.g. your office; loopback and the "
        "environments' bridge never are either.",
    )


class ProxyConfig(_Strict):
    """Caddy, which serves published http:// and https:// routes on ports 80 and 443."""

    tls: Literal["acme", "internal"] = Field(
        default="acme",
        description="acme: certificates from Let's Encrypt or ZeroSSL (the domain's DNS must "
        "point at this host); internal: from Caddy's own local CA, for tests and private hosts "
        "(clients must trust its root certificate, see docs/operations.md).",
    )
    acme_email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")] | None = Field(
        default=None,
        description="E-mail address given to the ACME CA (expiry notices); optional.",
    )


class ClocheConfig(_Strict):
    """The whole host configuration."""

    version: Literal[1] = Field(default=1, description="Schema version of this file.")
    lxd: LxdConfig = Field(default_factory=LxdConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    profile: ProfileConfig = Field(default_factory=ProfileConfig)
    image: ImageConfig = Field(default_factory=ImageConfig)
    ssh: SshConfig = Field(default_factory=SshConfig)
    snapshots: SnapshotsConfig = Field(default_factory=SnapshotsConfig)
    backups: BackupsConfig = Field(default_factory=BackupsConfig)
    firewall: FirewallConfig = Field(default_factory=FirewallConfig)
    bans: BansConfig = Field(default_factory=BansConfig)
    proxy: ProxyConfig = Field(default_factory=ProxyConfig)


def _location(error_location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in error_location) or "(top level)"


def _describe(error: dict[str, Any]) -> str:
    location = _location(tuple(error["loc"]))
    if error["type"] == "extra_forbidden":
        return f"{location}: unknown key; check its spelling against docs/config.md"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if error["type"] == "literal_error":
        message = f"{error['input']!r} is not allowed; {message.lower()}"
    return f"{location}: {message.rstrip('.')}"


def parse_config(data: object, source: str = CONFIG_PATH) -> ClocheConfig:
    """Validate already-loaded data as a config; raise Invalid naming the first bad path."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise Invalid(f"{source}: the file must hold a mapping of keys, not {type(data).__name__}.")
    try:
        return ClocheConfig.model_validate(data)
    except ValidationError as error:
        problems = [_describe(dict(item)) for item in error.errors()]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise Invalid(f"{source}: {problems[0]}{more}.") from None


def load_config_text(text: str, source: str = CONFIG_PATH) -> ClocheConfig:
    """Parse YAML text as a config; raise Invalid for bad YAML or bad values."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise Invalid(f"{source}: not valid YAML{where}; fix the syntax and retry.") from None
    return parse_config(data, source)


def with_overrides(config: ClocheConfig, overrides: dict[str, object]) -> ClocheConfig:
    """Return config with dotted keys (e.g. 'storage.size') replaced, validated again."""
    data = config.model_dump()
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        data.setdefault(section, {})[key] = value
    return parse_config(data, source="command-line options")
