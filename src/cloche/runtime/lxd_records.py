"""Pure: LXD's JSON read into cloche's types, and the request bodies built from what LXD holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cloche.model.instances import InstanceInfo, InstanceState, SnapshotInfo

# The fields of an instance a PUT replaces (LXD's InstancePut).
WRITABLE = (
    "architecture",
    "config",
    "devices",
    "ephemeral",
    "profiles",
    "stateful",
    "description",
)
EXEC_TIMED_OUT = 124


def instance_info(raw: Mapping[str, Any]) -> InstanceInfo:
    """An instance from LXD's description of it (GET /1.0/instances/NAME)."""
    return InstanceInfo(
        name=str(raw["name"]),
        status=str(raw.get("status", "")),
        profiles=tuple(raw.get("profiles") or ()),
        config={key: str(value) for key, value in (raw.get("config") or {}).items()},
        devices=own_devices(raw),
    )


def own_devices(raw: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The instance's own devices (not its profiles'), each a fresh dict."""
    return {key: dict(value) for key, value in (raw.get("devices") or {}).items()}


def ipv4_addresses(state: Mapping[str, Any]) -> tuple[str, ...]:
    """The global IPv4 addresses on eth0 in an instance's state, in the guest's order."""
    network = state.get("network") or {}
    return tuple(
        str(address["address"])
        for address in (network.get("eth0") or {}).get("addresses") or []
        if address.get("family") == "inet" and address.get("scope") == "global"
    )


def instance_state(name: str, state: Mapping[str, Any], status: str = "") -> InstanceState:
    """An instance's live facts from its state (status when the state has none)."""
    return InstanceState(
        name=name,
        status=str(status or state.get("status", "")),
        addresses=ipv4_addresses(state),
        memory_bytes=int((state.get("memory") or {}).get("usage", 0)),
        processes=int(state.get("processes", 0)),
        pid=int(state.get("pid", 0)),
    )


def lxd_time(text: str) -> datetime:
    """A time LXD writes ("2026-11-22T20:15:28.422205755Z") in UTC."""
    # LXD writes nanoseconds; Python reads up to microseconds.
    stamp, _, rest = text.rstrip("Z").partition(".")
    digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
    offset = rest[len(digits) :]
    moment = datetime.fromisoformat(
        f"{stamp}.{digits[:6].ljust(6, '0')}{offset}" if digits else stamp + offset
    )
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def snapshot_info(raw: Mapping[str, Any]) -> SnapshotInfo:
    """A snapshot from LXD's listing, which names it "instance/snapshot"."""
    return SnapshotInfo(
        name=str(raw["name"]).rsplit("/", 1)[-1], created_at=lxd_time(str(raw["created_at"]))
    )


def last_lines(text: str, count: int) -> str:
    """The last count non-blank lines of text."""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-count:])


def last_line(text: str) -> str:
    """The last non-blank line of text, stripped, or '(empty)'."""
    return last_lines(text, 1).strip() or "(empty)"


def failed_units(listing: str) -> tuple[str, ...]:
    """The unit names in `systemctl list-units --failed --plain --no-legend` output."""
    return tuple(line.split()[0] for line in listing.splitlines() if line.strip())


def template_is_current(info: InstanceInfo, fingerprint: str | None) -> bool:
    """True when a template was shifted (started once) from the image the alias points at."""
    shifted = info.config.get("volatile.last_state.idmap", "[]") not in ("", "[]")
    # No fingerprint: the alias is gone for now (an image being rebuilt); keep what works.
    return shifted and fingerprint in (None, info.config.get("volatile.base_image"))


def replacement(
    raw: Mapping[str, Any],
    *,
    config: Mapping[str, str] | None = None,
    devices: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """The PUT body that keeps what an instance holds (raw) but its config or devices."""
    body = {key: raw[key] for key in WRITABLE if key in raw}
    if config is not None:
        body["config"] = dict(config)
    if devices is not None:
        body["devices"] = {name: dict(device) for name, device in devices.items()}
    return body


def changed_devices(
    raw: Mapping[str, Any], add: Mapping[str, Mapping[str, str]], remove: Sequence[str]
) -> dict[str, dict[str, str]]:
    """An instance's own devices with remove taken out and add put in (replacing)."""
    devices = own_devices(raw)
    for device in remove:
        devices.pop(device, None)
    devices.update({device: dict(config) for device, config in add.items()})
    return devices


def timed_command(argv: Sequence[str], timeout: float | None) -> list[str]:
    """argv, under coreutils' timeout when a deadline is given (LXD's exec has none)."""
    if timeout is None:
        return list(argv)
    return ["timeout", "--kill-after=5", f"{timeout:g}", *argv]
