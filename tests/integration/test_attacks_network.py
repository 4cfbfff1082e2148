"""Attacks from root inside an environment on the network boundary, on real LXD and nftables.

Each probe has a positive control: the same packet from the address it claims (or to a target
that is allowed) arrives, so a probe cannot pass because it is broken. Traffic stays on the
bridge of this machine.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cloche.host import nftables
from tests.integration import host_services
from tests.integration.cloche_cli import cloche, cloche_json, cloche_ok
from tests.integration.conftest import apt_mirror_host, lxc
from tests.integration.test_environments import make_user, remove_user
from tests.integration.test_firewall import (
    AUDIT_LOG,
    GATEWAY,
    SMALL,
    env_address,
    in_env,
    namespace,
    udp_received,
)

UDP_PORT = 5399
TCP_PORT = 5400
UDP6_PORT = 5401

# Listens on UDP_PORT and TCP_PORT in the background and appends each sender's address to a file.
LISTENER = f"""
import os, socket, threading
def udp():
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("0.0.0.0", {UDP_PORT}))
    while True:
        data, source = server.recvfrom(512)
        with open("/root/heard", "a") as log:
            log.write("udp " + source[0] + " " + data.decode(errors="replace") + chr(10))
def tcp():
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", {TCP_PORT}))
    server.listen(8)
    while True:
        connection, source = server.accept()
        data = connection.recv(512)
        with open("/root/heard", "a") as log:
            log.write("tcp " + source[0] + " " + data.decode(errors="replace") + chr(10))
        connection.close()
def udp6():
    server = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    server.bind(("::", {UDP6_PORT}))
    while True:
        data, source = server.recvfrom(512)
        with open("/root/heard", "a") as log:
            log.write("udp6 " + source[0] + " " + data.decode(errors="replace") + chr(10))
threading.Thread(target=udp, daemon=True).start()
threading.Thread(target=udp6, daemon=True).start()
tcp()
"""

# Sends argv[3] UDP datagrams and ICMPv6 echo requests to the link-local address argv[1] on eth0.
SEND6 = f"""
import socket, sys
target, marker, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
scope = socket.if_nametoindex("eth0")
udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
icmp = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
echo = bytes([128, 0, 0, 0, 0, 1, 0, 1]) + marker.encode()
for _ in range(count):
    udp.sendto(marker.encode(), (target, {UDP6_PORT}, 0, scope))
    icmp.sendto(echo, (target, 0, 0, scope))
"""

# Sends one UDP datagram and one TCP message to argv[1] from source address argv[2].
SEND = f"""
import socket, sys
target, source, marker = sys.argv[1], sys.argv[2], sys.argv[3]
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind((source, 0))
for _ in range(3):
    udp.sendto(marker.encode(), (target, {UDP_PORT}))
tcp = socket.socket()
tcp.bind((source, 0))
tcp.settimeout(3)
try:
    tcp.connect((target, {TCP_PORT}))
    tcp.sendall(marker.encode())
except OSError:
    pass
tcp.close()
"""


@pytest.fixture(scope="module", autouse=True)
def daemon() -> None:
    """The host is set up (firewall loaded) and the daemon runs the code under test."""
    cloche_ok("host", "init")


@dataclass
class Victims:
    """Tenant b with a sender and a listener; tenant a (the attacker) with one environment."""

    attacker: str
    victim: str
    addresses: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def victims() -> Iterator[Victims]:
    users: list[str] = []
    try:
        attacker = make_user("--max-envs", "1", "--cpu", "1", "--memory", "1GiB", "--disk", "20GiB")
        users.append(attacker)
        victim = make_user("--max-envs", "3", "--cpu", "3", "--memory", "2GiB", "--disk", "40GiB")
        users.append(victim)
        for address in (f"{attacker}/evil", f"{victim}/sender", f"{victim}/listener"):
            cloche_ok("create", address, *SMALL)
        found = Victims(attacker, victim)
        for address in (f"{attacker}/evil", f"{victim}/sender", f"{victim}/listener"):
            found.addresses[address] = env_address(address)
        listener = f"{victim}/listener"
        in_env(listener, "sh", "-c", "rm -f /root/heard")
        in_env(
            listener,
            "sh",
            "-c",
            f"setsid python3 -c '{LISTENER}' >/dev/null 2>&1 </dev/null &",
        )
        time.sleep(1)
        yield found
    finally:
        for name in users:
            remove_user(name)


def heard(listener: str) -> str:
    """Everything the listener recorded so far."""
    return in_env(listener, "sh", "-c", "cat /root/heard 2>/dev/null || true").stdout


def send(sender: str, target: str, source: str, marker: str) -> None:
    """From inside sender (as root), send the probes to target from source."""
    in_env(sender, "python3", "-c", SEND, target, source, marker)


def wait_heard(listener: str, marker: str, seconds: float = 5) -> str:
    """The listener's lines with marker, waiting up to seconds for the first."""
    deadline = time.monotonic() + seconds
    while True:
        lines = "\n".join(line for line in heard(listener).splitlines() if marker in line)
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.5)


def test_a_spoofed_source_from_another_tenant_never_arrives(victims: Victims) -> None:
    attacker, victim = f"{victims.attacker}/evil", victims.victim
    sender, listener = f"{victim}/sender", f"{victim}/listener"
    own, target = victims.addresses[sender], victims.addresses[listener]
    # Positive control: the real sender's UDP and TCP, from its own address, arrive.
    send(sender, target, own, "control-ok")
    arrived = wait_heard(listener, "control-ok")
    assert f"udp {own} control-ok" in arrived
    assert f"tcp {own} control-ok" in arrived
    # Root in the attacker's environment takes the sender's address and sends as it.
    taken = in_env(attacker, "ip", "addr", "add", f"{own}/16", "dev", "eth0")
    assert taken.returncode == 0, taken.stderr
    try:
        send(attacker, target, own, "spoofed")
        assert wait_heard(listener, "spoofed", seconds=4) == ""
    finally:
        in_env(attacker, "ip", "addr", "del", f"{own}/16", "dev", "eth0")


def test_another_tenants_udp_and_tcp_never_arrive(victims: Victims) -> None:
    attacker, sender = f"{victims.attacker}/evil", f"{victims.victim}/sender"
    listener = f"{victims.victim}/listener"
    target = victims.addresses[listener]
    send(sender, target, victims.addresses[sender], "same-tenant")  # positive control
    assert "same-tenant" in wait_heard(listener, "same-tenant")
    send(attacker, target, victims.addresses[attacker], "cross-tenant")
    assert wait_heard(listener, "cross-tenant", seconds=4) == ""


def _arrived(received: list[str], marker: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(marker in line for line in received):
            return True
        time.sleep(0.2)
    return False


def test_a_spoofed_source_does_not_escape_egress_none(victims: Victims) -> None:
    attacker = f"{victims.attacker}/evil"
    own = victims.addresses[attacker]
    # An address on the bridge's network that cloche never assigned (the pool starts low).
    unassigned = f"10.120.254.{10 + secrets.randbelow(200)}"
    with namespace() as internet, udp_received(internet, UDP_PORT) as received:
        send(attacker, internet.internet, own, "open-ok")  # positive control: egress open
        assert _arrived(received, "open-ok", 5), "the probe never left the host under 'open'"
        cloche_ok("egress", attacker, "none")
        taken = in_env(attacker, "ip", "addr", "add", f"{unassigned}/16", "dev", "eth0")
        try:
            assert taken.returncode == 0, taken.stderr
            send(attacker, internet.internet, unassigned, "spoofed-out")
            send(attacker, internet.internet, own, "plain-out")
            assert not _arrived(received, "-out", 4), received
        finally:
            in_env(attacker, "ip", "addr", "del", f"{unassigned}/16", "dev", "eth0")
            cloche_ok("egress", attacker, "open")


def _events_since(moment: datetime, action: str, target: str) -> list[dict[str, Any]]:
    found = []
    for line in AUDIT_LOG.read_text().splitlines():
        event = json.loads(line)
        when = datetime.fromisoformat(str(event["time"]))
        if event["action"] == action and event["target"] == target and when >= moment:
            found.append(event)
    return found


def test_an_address_the_guest_configures_is_never_adopted(victims: Victims) -> None:
    attacker = f"{victims.attacker}/evil"
    assigned = victims.addresses[attacker]
    started = datetime.now(UTC)
    # networkd lists another address before DHCP's, as root inside can make it do.
    dropin = "[Match]\nName=eth0\n\n[Network]\nAddress=10.120.0.250/16\nDHCP=ipv4\n"
    written = in_env(
        attacker,
        "sh",
        "-c",
        f"printf '{dropin}' > /etc/systemd/network/05-evil.network",
    )
    assert written.returncode == 0, written.stderr
    try:
        cloche_ok("restart", attacker)
        reported = in_env(attacker, "ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout
        assert "10.120.0.250" in reported  # positive control: the guest did claim it
        assert cloche_json("info", attacker)["address"] == assigned
        # Another tenant's next environment is created (the assigned address stays taken).
        other = make_user("--max-envs", "1", "--cpu", "1", "--memory", "1GiB", "--disk", "20GiB")
        try:
            cloche_ok("create", f"{other}/next", *SMALL)
            assert env_address(f"{other}/next") not in (assigned, "10.120.0.250")
        finally:
            remove_user(other)
        # The reconciler (every 60 s) audits the mismatch once and host status names it.
        deadline = time.monotonic() + 75
        while not _events_since(started, "found address mismatch", attacker):
            assert time.monotonic() < deadline, "the mismatch was never audited"
            time.sleep(2)
        status = cloche("host", "status", "--json")
        assert status.returncode != 0
        lines = {line["component"]: line for line in json.loads(status.stdout)}
        assert not lines["addresses"]["ok"]
        assert f"{attacker} reports 10.120.0.250" in lines["addresses"]["detail"]
    finally:
        in_env(attacker, "rm", "-f", "/etc/systemd/network/05-evil.network")
        cloche("restart", attacker)


def test_egress_none_resolves_no_names(victims: Victims) -> None:
    attacker = f"{victims.attacker}/evil"
    name = apt_mirror_host()
    resolved = in_env(attacker, "getent", "hosts", name)
    assert resolved.returncode == 0, resolved.stderr  # positive control: DNS answers under open
    cloche_ok("egress", attacker, "none")
    try:
        refused = in_env(
            attacker, "timeout", "10", "getent", "hosts", f"x{secrets.token_hex(4)}.{name}"
        )
        assert refused.returncode != 0
        assert in_env(attacker, "timeout", "10", "getent", "hosts", name).returncode != 0
    finally:
        cloche_ok("egress", attacker, "open")
    assert in_env(attacker, "getent", "hosts", name).returncode == 0


# Runs at the attacker's boot: for 20 s, tries to reach the victim (it must never arrive) and
# the gateway's SSH (the positive control: the probe ran and the network was up).
BOOT_PROBE = """
import socket, sys, time
target, gateway = sys.argv[1], sys.argv[2]
deadline = time.time() + 20
with open("/root/probe.log", "a") as log:
    while time.time() < deadline:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.sendto(b"boot-probe", (target, PORT_UDP))
        udp.close()
        for host, port, what in ((target, PORT_TCP, "victim"), (gateway, 22, "gateway")):
            try:
                socket.create_connection((host, port), timeout=0.3).close()
                log.write(what + " ok" + chr(10))
            except OSError:
                pass
        log.flush()
        time.sleep(0.2)
""".replace("PORT_UDP", str(UDP_PORT)).replace("PORT_TCP", str(TCP_PORT))


def _kill_the_daemon() -> None:
    host_services.kill_daemon()
    time.sleep(0.5)


def test_at_boot_environments_start_only_after_the_firewall(victims: Victims) -> None:
    attacker, listener = f"{victims.attacker}/evil", f"{victims.victim}/listener"
    project, target = f"cloche-{victims.attacker}", victims.addresses[listener]
    autostart = lxc("config", "get", "evil", "boot.autostart", "--project", project)
    assert autostart.stdout.strip() == "false"  # LXD itself would start nothing at boot
    unit = (
        "[Unit]\\nAfter=network.target\\n[Service]\\nType=simple\\n"
        f"ExecStart=/usr/bin/python3 /root/probe.py {target} {GATEWAY}\\n"
        "[Install]\\nWantedBy=multi-user.target\\n"
    )
    in_env(attacker, "sh", "-c", f"cat > /root/probe.py <<'EOF'\n{BOOT_PROBE}\nEOF")
    in_env(attacker, "sh", "-c", f"printf '{unit}' > /etc/systemd/system/probe.service")
    in_env(attacker, "systemctl", "enable", "probe.service")
    in_env(listener, "sh", "-c", "rm -f /root/heard")
    started = datetime.now(UTC)
    # A reboot, as far as cloche can tell: no daemon, the instance stopped, no table.
    _kill_the_daemon()
    try:
        lxc("stop", "evil", "--project", project, "--force")
        nftables.delete_ruleset()
        cloche_ok("host", "init")  # what a boot runs: the table, then the daemon
        deadline = time.monotonic() + 90
        while cloche_json("info", attacker)["state"] != "Running":
            assert time.monotonic() < deadline, "the daemon did not start the environment"
            time.sleep(1)
    finally:
        if nftables.current_ruleset() is None:
            cloche("host", "init")
    time.sleep(25)  # the probe's 20 s at boot
    probe_log = in_env(attacker, "sh", "-c", "cat /root/probe.log 2>/dev/null || true").stdout
    assert "gateway ok" in probe_log  # positive control: it ran, with the network up
    assert "victim ok" not in probe_log
    assert "boot-probe" not in heard(listener)
    boots = [
        event
        for event in _events_since(started, "started environment", attacker)
        if (event.get("details") or {}).get("why") == "boot"
    ]
    assert len(boots) == 1


# Sends gratuitous ARP replies from eth0 claiming argv[1] for this environment's own MAC.
GRATUITOUS_ARP = """
import socket, struct, sys
claimed = socket.inet_aton(sys.argv[1])
mac = bytes.fromhex(open("/sys/class/net/eth0/address").read().strip().replace(":", ""))
arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, mac, claimed, b"\\xff" * 6, claimed)
frame = b"\\xff" * 6 + mac + struct.pack("!H", 0x0806) + arp
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
raw.bind(("eth0", 0))
for _ in range(5):
    raw.send(frame)
"""


def _neighbour_mac(address: str) -> str:
    shown = subprocess.run(
        ["ip", "neigh", "show", address], capture_output=True, text=True, check=True
    ).stdout.split()
    return shown[shown.index("lladdr") + 1] if "lladdr" in shown else ""


def test_gratuitous_arp_for_another_tenants_address_pulls_no_traffic(victims: Victims) -> None:
    attacker, listener = f"{victims.attacker}/evil", f"{victims.victim}/listener"
    target = victims.addresses[listener]
    project = f"cloche-{victims.victim}"
    victim_mac = lxc("config", "get", "listener", "volatile.eth0.hwaddr", "--project", project)
    # Positive control: the host reaches the victim and knows its real MAC.
    in_env(listener, "sh", "-c", "rm -f /root/heard")
    with socket.create_connection((target, TCP_PORT), timeout=3) as connection:
        connection.sendall(b"before-arp")
    assert wait_heard(listener, "before-arp")
    assert _neighbour_mac(target) == victim_mac.stdout.strip()
    sent = in_env(attacker, "python3", "-c", GRATUITOUS_ARP, target)
    assert sent.returncode == 0, sent.stderr  # the frames left the attacker's eth0
    time.sleep(1)
    assert _neighbour_mac(target) == victim_mac.stdout.strip()
    with socket.create_connection((target, TCP_PORT), timeout=3) as connection:
        connection.sendall(b"after-arp")
    assert wait_heard(listener, "after-arp")  # still the victim's, not pulled to the attacker


# Answers every datagram, so connection tracking holds the flow as established (a reply seen).
UDP_LISTEN = f"""
import socket
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind(("0.0.0.0", {UDP_PORT}))
while True:
    data, source = server.recvfrom(512)
    server.sendto(b"echo", source)
    with open("/root/flow", "a") as log:
        log.write(source[0] + " " + data.decode(errors="replace") + chr(10))
"""

UDP_KEEP_SENDING = f"""
import socket, sys, time
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("0.0.0.0", 41999))
deadline = time.time() + 90
while time.time() < deadline:
    udp.sendto(b"kept-alive", (sys.argv[1], {UDP_PORT}))
    time.sleep(0.1)
"""


def _flow(address: str) -> str:
    return in_env(address, "sh", "-c", "cat /root/flow 2>/dev/null || true").stdout


def test_a_flow_to_a_released_address_never_reaches_its_next_owner() -> None:
    users: list[str] = []
    try:
        first = make_user("--max-envs", "2", "--cpu", "2", "--memory", "2GiB", "--disk", "40GiB")
        users.append(first)
        second = make_user("--max-envs", "1", "--cpu", "1", "--memory", "1GiB", "--disk", "20GiB")
        users.append(second)
        sender, old = f"{first}/sender", f"{first}/old"
        for address in (sender, old):
            cloche_ok("create", address, *SMALL)
        released = env_address(old)
        in_env(old, "sh", "-c", f"setsid python3 -c '{UDP_LISTEN}' >/dev/null 2>&1 </dev/null &")
        in_env(
            sender,
            "sh",
            "-c",
            f"setsid python3 -c '{UDP_KEEP_SENDING}' {released} >/dev/null 2>&1 </dev/null &",
        )
        deadline = time.monotonic() + 10
        while "kept-alive" not in _flow(old):  # positive control: the tenant's own flow
            assert time.monotonic() < deadline, "the flow within the tenant never arrived"
            time.sleep(0.5)
        cloche_ok("rm", old, "--yes")
        heir = f"{second}/heir"
        cloche_ok("create", heir, *SMALL)
        assert env_address(heir) == released  # the lowest free address: the one just released
        in_env(heir, "sh", "-c", f"setsid python3 -c '{UDP_LISTEN}' >/dev/null 2>&1 </dev/null &")
        time.sleep(1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.sendto(b"from-the-host", (released, UDP_PORT))  # positive control: it listens
        time.sleep(3)  # the sender keeps sending every 0.1 s all along
        arrived = _flow(heir)
        assert "from-the-host" in arrived
        assert "kept-alive" not in arrived
    finally:
        for name in users:
            remove_user(name)


def _link_local(address: str) -> tuple[str, str]:
    """The IPv6 link-local address and the MAC of an environment's eth0."""
    shown = in_env(address, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link")
    assert shown.returncode == 0, shown.stderr
    link_local = shown.stdout.split(" inet6 ", 1)[1].split("/", 1)[0]
    mac = in_env(address, "cat", "/sys/class/net/eth0/address").stdout.strip()
    return link_local, mac


def _host_port(address: str) -> Path:
    """The statistics of the host side of an environment's eth0 (its bridge port)."""
    user, name = address.split("/")
    state = json.loads(lxc("query", f"/1.0/instances/{name}/state?project=cloche-{user}").stdout)
    return Path("/sys/class/net") / state["network"]["eth0"]["host_name"] / "statistics"


def _packets(port: Path, counter: str) -> int:
    return int((port / counter).read_text())


def test_ipv6_link_local_never_crosses_tenants(victims: Victims) -> None:
    evil, listener = f"{victims.attacker}/evil", f"{victims.victim}/listener"
    target, target_mac = _link_local(listener)
    # Positive control: the listener hears link-local UDP (sent from its own environment).
    marker = f"ll-{secrets.token_hex(4)}"
    in_env(listener, "python3", "-c", SEND6, target, marker, "1")
    assert marker in wait_heard(listener, marker), "the IPv6 listener hears nothing at all"

    # Root in the attacker's environment knows the victim's MAC: no neighbour discovery needed.
    neighbour = ("ip", "-6", "neigh", "replace", target, "lladdr", target_mac, "dev", "eth0")
    assert in_env(evil, *neighbour, "nud", "permanent").returncode == 0
    attacker_port, victim_port = _host_port(evil), _host_port(listener)
    sent_before = _packets(attacker_port, "rx_packets")
    received_before = _packets(victim_port, "tx_packets")
    marker = f"ll-{secrets.token_hex(4)}"
    in_env(evil, "python3", "-c", SEND6, target, marker, "100")
    # The 200 probes left the attacker's NIC onto the bridge (the probe works) ...
    assert _packets(attacker_port, "rx_packets") - sent_before >= 200
    assert not wait_heard(listener, marker, seconds=3)
    # ... and next to none reached the victim's port (a little DHCP or ARP may pass meanwhile).
    assert _packets(victim_port, "tx_packets") - received_before < 20
