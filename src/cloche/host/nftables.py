"""The host firewall: load cloche's nft script (table inet cloche only), checked and atomic.

`apply_ruleset` checks the script with `nft -c -f`, keeps the live table's listing, loads the
script with `nft -f` (one transaction: a failed load changes nothing), and if the load fails
anyway puts the kept listing back. Only table inet cloche is read, replaced or deleted here;
LXD's table (inet lxd) and any other are never named. `netns` runs the same commands inside
`ip netns exec NAME`, which is how tests load a drop-policy ruleset without touching the host.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from cloche.host.files import read_text_or_none
from cloche.host.run import run
from cloche.model.errors import HostFailure
from cloche.model.process import Completed

log = logging.getLogger(__name__)

TABLE = ("inet", "cloche")
NFT_TIMEOUT_SECONDS = 30.0
# Bridged traffic between environments reaches the forward hook only with these on.
BRIDGE_NETFILTER = (
    Path("/proc/sys/net/bridge/bridge-nf-call-iptables"),
    Path("/proc/sys/net/bridge/bridge-nf-call-ip6tables"),
)


def _argv(argv: Sequence[str], netns: str | None) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


def _nft(argv: Sequence[str], netns: str | None, *, check: bool = True) -> Completed:
    return run(_argv(["nft", *argv], netns), timeout=NFT_TIMEOUT_SECONDS, check=check)


@contextlib.contextmanager
def _script_file(text: str) -> Iterator[str]:
    handle, path = tempfile.mkstemp(prefix="cloche-nft-", suffix=".nft")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def current_ruleset(netns: str | None = None) -> str | None:
    """The live listing of table inet cloche, or None when there is no such table."""
    result = _nft(["list", "table", *TABLE], netns, check=False)
    if result.ok:
        return result.stdout
    if "No such file or directory" in result.stderr:
        return None
    raise HostFailure(
        f"Reading the firewall table inet cloche failed: {result.stderr.strip()[-300:]}; "
        "check that nftables works on this host ('nft list tables')."
    )


def _restore(previous: str | None, netns: str | None) -> None:
    """Put table inet cloche back as previous listed it (None: the table did not exist)."""
    if previous is None:
        _nft(["delete", "table", *TABLE], netns, check=False)
        return
    table = " ".join(TABLE)
    with _script_file(f"table {table} {{}}\ndelete table {table}\n{previous}") as path:
        _nft(["-f", path], netns)


def apply_ruleset(text: str, netns: str | None = None) -> bool:
    """Check and load text (a script that replaces table inet cloche); True if the table changed.

    A script nft refuses changes nothing and raises HostFailure; a load that fails after the
    check restores the previous table before raising.
    """
    if "table inet cloche" not in text:
        raise HostFailure("The firewall script does not define table inet cloche; not loading it.")
    previous = current_ruleset(netns)
    with _script_file(text) as path:
        checked = _nft(["-c", "-f", path], netns, check=False)
        if not checked.ok:
            raise HostFailure(
                f"nft refused the firewall script: {checked.stderr.strip()[-400:]}; the live "
                "firewall was left as it was."
            )
        loaded = _nft(["-f", path], netns, check=False)
    if not loaded.ok:
        log.warning("loading the firewall failed, restoring the previous table: %s", loaded.stderr)
        _restore(previous, netns)
        raise HostFailure(
            f"Loading the firewall failed: {loaded.stderr.strip()[-300:]}; the previous table "
            "inet cloche was put back."
        )
    return current_ruleset(netns) != previous


def change_elements(text: str, netns: str | None = None) -> None:
    """Check and load a script of set element changes to table inet cloche (one transaction)."""
    with _script_file(text) as path:
        for argv in (["-c", "-f", path], ["-f", path]):
            result = _nft(argv, netns, check=False)
            if not result.ok:
                raise HostFailure(
                    f"nft refused the firewall element changes: {result.stderr.strip()[-300:]}; "
                    "the live table was left as it was."
                )


def delete_ruleset(netns: str | None = None) -> None:
    """Remove table inet cloche (nothing else); a missing table is fine."""
    _nft(["delete", "table", *TABLE], netns, check=False)


def bridge_netfilter_enabled() -> bool:
    """True when bridged IPv4 and IPv6 traffic passes the netfilter hooks (br_netfilter)."""
    return all((read_text_or_none(path) or "").strip() == "1" for path in BRIDGE_NETFILTER)


def ensure_bridge_netfilter() -> None:
    """Turn br_netfilter's iptables/ip6tables hooks on (host init persists them in sysctl.d)."""
    if bridge_netfilter_enabled():
        return
    if not BRIDGE_NETFILTER[0].exists():
        raise HostFailure(
            "The kernel has no br_netfilter (no /proc/sys/net/bridge): environments on the bridge "
            "could reach each other's; load the br_netfilter module and run 'cloche host init'."
        )
    run(
        [
            "sysctl",
            "-q",
            "-w",
            "net.bridge.bridge-nf-call-iptables=1",
            "net.bridge.bridge-nf-call-ip6tables=1",
        ]
    )
