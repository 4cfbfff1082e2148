"""The host firewall for real: tenant isolation, the host's ports, egress, protect mode, repair.

Real LXD, real nftables, through the CLI and the daemon. Traffic goes only to addresses on this
machine: the bridge, and network namespaces these tests create (and delete). The protect mode
(a drop policy on input) is only ever loaded inside such a namespace, never in the root one.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloche.host import nftables
from cloche.model.errors import HostFailure
from cloche.model.firewall import FirewallPolicy
from cloche.render.nftables import render_ruleset
from tests.integration.cloche_cli import cloche, cloche_json, cloche_ok
from tests.integration.conftest import apt_mirror_host
from tests.integration.test_environments import make_user, remove_user

AUDIT_LOG = Path("/var/lib/cloche/audit.log")
GATEWAY = "10.120.0.1"
HTTP_PORT = 8080
SMALL = ("--cpu", "1", "--memory", "512MiB")

# Sends one ICMP echo request from inside an environment; exit 0 only if the reply came back.
PING = r"""
import os, socket, struct, sys, time
def checksum(data):
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF
target, ident = sys.argv[1], os.getpid() & 0xFFFF
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
packet = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"cloche"
packet = packet[:2] + struct.pack("!H", checksum(packet)) + packet[4:]
raw.sendto(packet, (target, 0))
deadline = time.time() + 2
while time.time() < deadline:
    raw.settimeout(max(0.01, deadline - time.time()))
    try:
        data, source = raw.recvfrom(1024)
    except socket.timeout:
        break
    body = data[(data[0] & 15) * 4 :]
    if source[0] == target and body[0] == 0 and struct.unpack("!H", body[4:6])[0] == ident:
        sys.exit(0)
sys.exit(1)
"""

CONNECT = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()\n"
    "except OSError:\n"
    "    sys.exit(1)\n"
)


@pytest.fixture(scope="module", autouse=True)
def daemon() -> None:
    """The host is set up (firewall loaded) and the daemon runs the code under test."""
    cloche_ok("host", "init")


def in_env(address: str, *command: str) -> subprocess.CompletedProcess[str]:
    """Run a command as root inside an environment."""
    return cloche("exec", address, "--root", "--", *command, timeout=60)


def curl_ok(address: str, url: str) -> bool:
    """True when an HTTP GET from inside the environment gets an answer within 3 s."""
    return in_env(address, "curl", "-s", "-o", "/dev/null", "--max-time", "3", url).returncode == 0


def pings(address: str, target: str) -> bool:
    """True when an ICMP echo from inside the environment is answered within 2 s."""
    return in_env(address, "python3", "-c", PING, target).returncode == 0


def connects(address: str, host: str, port: int) -> bool:
    """True when a TCP connection from inside the environment opens within 3 s."""
    return in_env(address, "python3", "-c", CONNECT, host, str(port)).returncode == 0


def host_connects(host: str, port: int) -> bool:
    """True when a TCP connection from the host (root namespace) opens within 3 s."""
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError:
        return False
    return True


def serve_http(address: str) -> None:
    """Start an HTTP server on port 8080 inside the environment, detached from the exec."""
    in_env(
        address,
        "sh",
        "-c",
        f"setsid python3 -m http.server {HTTP_PORT} >/dev/null 2>&1 </dev/null &",
    )
    deadline = time.monotonic() + 15
    ip = env_address(address)
    while not host_connects(ip, HTTP_PORT):  # the host reaches every env (output, not forward)
        assert time.monotonic() < deadline, f"the HTTP server in {address} did not start"
        time.sleep(0.3)


def env_address(address: str) -> str:
    """The environment's IPv4 address as cloche recorded it."""
    return str(cloche_json("info", address)["address"])


@dataclass
class Tenants:
    """User a with two environments, user b with one; their addresses."""

    a: str
    b: str
    addresses: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def tenants() -> Iterator[Tenants]:
    users: list[str] = []
    try:
        a = make_user("--max-envs", "2", "--cpu", "2", "--memory", "2GiB", "--disk", "40GiB")
        users.append(a)
        b = make_user("--max-envs", "1", "--cpu", "1", "--memory", "1GiB", "--disk", "20GiB")
        users.append(b)
        for address in (f"{a}/one", f"{a}/two", f"{b}/one"):
            cloche_ok("create", address, *SMALL)
        found = Tenants(a, b)
        for address in (f"{a}/one", f"{a}/two", f"{b}/one"):
            found.addresses[address] = env_address(address)
            serve_http(address)
        yield found
    finally:
        for name in users:
            remove_user(name)


# Network namespaces the host routes to: "the internet" of an environment, kept on this machine.


@dataclass(frozen=True)
class Namespace:
    """A network namespace joined to the root one by a veth pair on a /30, routing one more
    address beyond it: the pair is one of the host's own networks (closed to environments, as
    a LAN is), the routed address stands for the internet."""

    name: str
    host_side: str
    outer: str  # the root namespace's address on the pair
    inner: str  # the namespace's address on the pair
    network: str  # the pair's /30
    internet: str  # an address on the namespace's loopback, routed by the host via inner


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def _free_slash30() -> tuple[str, str, str]:
    for _ in range(50):
        third, fourth = secrets.randbelow(256), 4 * secrets.randbelow(64)
        outer, inner = f"10.254.{third}.{fourth + 1}", f"10.254.{third}.{fourth + 2}"
        route = subprocess.run(
            ["ip", "route", "get", inner], capture_output=True, text=True, check=False
        ).stdout
        if " via " in route:  # nothing on this machine uses it yet
            return outer, inner, f"10.254.{third}.{fourth}/30"
    raise AssertionError("no free /30 in 10.254.0.0/16")


@contextlib.contextmanager
def namespace() -> Iterator[Namespace]:
    """A fresh namespace `cloche-t-<hex>`; deleted afterwards (its veth pair goes with it)."""
    tag = secrets.token_hex(4)
    outer, inner, network = _free_slash30()
    internet = inner.replace("10.254.", "10.253.", 1)
    made = Namespace(f"cloche-t-{tag}", f"vct{tag}", outer, inner, network, internet)
    _ip("netns", "add", made.name)
    try:
        _ip(
            "link",
            "add",
            made.host_side,
            "type",
            "veth",
            "peer",
            "name",
            "inner0",
            "netns",
            made.name,
        )
        _ip("addr", "add", f"{outer}/30", "dev", made.host_side)
        _ip("link", "set", made.host_side, "up")
        _ip("-n", made.name, "addr", "add", f"{inner}/30", "dev", "inner0")
        _ip("-n", made.name, "link", "set", "inner0", "up")
        _ip("-n", made.name, "link", "set", "lo", "up")
        _ip("-n", made.name, "addr", "add", f"{internet}/32", "dev", "lo")
        _ip("route", "add", f"{internet}/32", "via", inner)
        yield made
    finally:
        subprocess.run(["ip", "route", "del", f"{internet}/32"], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", made.host_side], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", made.name], capture_output=True, check=False)


LISTENER = (
    "import socket, sys\n"
    "servers = []\n"
    "for port in sys.argv[2:]:\n"
    "    server = socket.create_server((sys.argv[1], int(port)))\n"
    "    servers.append(server)\n"
    "print('ready', flush=True)\n"
    "import selectors\n"
    "selector = selectors.DefaultSelector()\n"
    "for server in servers:\n"
    "    selector.register(server, selectors.EVENT_READ)\n"
    "while True:\n"
    "    for key, _ in selector.select():\n"
    "        key.fileobj.accept()[0].close()\n"
)


@contextlib.contextmanager
def listening(netns: Namespace, *ports: int) -> Iterator[None]:
    """TCP listeners on the namespace's addresses; stopped afterwards (only this process)."""
    process = subprocess.Popen(
        ["ip", "netns", "exec", netns.name, "python3", "-c", LISTENER, "0.0.0.0"]
        + [str(port) for port in ports],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready", process.stderr
        yield
    finally:
        process.kill()
        process.wait(timeout=10)


@contextlib.contextmanager
def gateway_listener(port: int) -> Iterator[None]:
    """A TCP listener on the bridge's own address in the root namespace (a 'management port')."""
    server = socket.create_server((GATEWAY, port))
    server.settimeout(0.5)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                server.accept()[0].close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


# Tenant isolation --------------------------------------------------------------------------


def test_the_live_table_is_what_cloche_renders_and_lists_every_env(tenants: Tenants) -> None:
    listing = nftables.current_ruleset()
    assert listing is not None
    for address, ip in tenants.addresses.items():
        assert f'{ip} comment "{address}"' in listing
    # Tenants are told apart by a tag per user; the two tenants' tags differ.
    tags: dict[str, set[str]] = {}
    for name, ip in tenants.addresses.items():
        tag = re.search(rf'{re.escape(ip)} comment "[^"]+" : (0x[0-9a-f]+)', listing)
        assert tag, f"{name} has no tenant tag in the live table"
        tags.setdefault(name.split("/")[0], set()).add(tag.group(1))
    assert len(tags[tenants.a]) == len(tags[tenants.b]) == 1
    assert tags[tenants.a] != tags[tenants.b]
    assert Path("/proc/sys/net/bridge/bridge-nf-call-iptables").read_text().strip() == "1"


def test_another_tenants_environment_is_unreachable_tcp_and_icmp(tenants: Tenants) -> None:
    a_one, b_one = f"{tenants.a}/one", f"{tenants.b}/one"
    b_ip, a_ip = tenants.addresses[b_one], tenants.addresses[a_one]
    assert host_connects(b_ip, HTTP_PORT)  # the server answers: the drop below is the firewall
    assert not curl_ok(a_one, f"http://{b_ip}:{HTTP_PORT}/")
    assert not pings(a_one, b_ip)
    assert not curl_ok(b_one, f"http://{a_ip}:{HTTP_PORT}/")
    assert not pings(b_one, a_ip)


def test_a_tenants_own_environments_reach_each_other(tenants: Tenants) -> None:
    a_one, a_two = f"{tenants.a}/one", f"{tenants.a}/two"
    assert curl_ok(a_one, f"http://{tenants.addresses[a_two]}:{HTTP_PORT}/")
    assert pings(a_one, tenants.addresses[a_two])
    assert curl_ok(a_two, f"http://{tenants.addresses[a_one]}:{HTTP_PORT}/")


def test_management_ports_of_the_host_are_closed_to_environments(tenants: Tenants) -> None:
    a_one = f"{tenants.a}/one"
    with gateway_listener(2019):
        assert host_connects(GATEWAY, 2019)
        assert not connects(a_one, GATEWAY, 2019)
    assert connects(a_one, GATEWAY, 22)  # a public service of the host stays open to envs


def test_the_cloud_metadata_address_is_dropped(tenants: Tenants) -> None:
    listing = nftables.current_ruleset() or ""
    assert "ip daddr @closed_ranges ip daddr != @open_ranges drop" in listing
    assert "169.254.0.0/16" in listing
    started = time.monotonic()
    assert not connects(f"{tenants.a}/one", "169.254.169.254", 80)
    assert time.monotonic() - started < 30


def test_metadata_link_local_and_the_hosts_lan_are_closed_to_environments(
    tenants: Tenants,
) -> None:
    a_one = f"{tenants.a}/one"
    closed = ("168.63.129.16", "100.100.100.200", "169.254.77.77")
    with namespace() as netns, listening(netns, HTTP_PORT):
        for address in closed:  # real listeners, routed through the namespace
            _ip("-n", netns.name, "addr", "add", f"{address}/32", "dev", "lo")
            _ip("route", "add", f"{address}/32", "via", netns.inner)
        try:
            cloche_ok("egress", a_one, "open")  # converges: the pair is now one of the host's
            for address in (*closed, netns.inner):
                assert host_connects(address, HTTP_PORT)  # positive control: it answers
                assert not connects(a_one, address, HTTP_PORT), address
            assert connects(a_one, netns.internet, HTTP_PORT)  # beyond the LAN stays open
        finally:
            for address in closed:
                subprocess.run(
                    ["ip", "route", "del", f"{address}/32"], capture_output=True, check=False
                )


def test_environments_still_get_dhcp_and_dns_from_the_gateway(tenants: Tenants) -> None:
    a_one = f"{tenants.a}/one"
    # The address came by DHCP after the firewall was loaded (it is loaded before each start).
    shown = in_env(a_one, "ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout
    assert tenants.addresses[a_one] in shown
    resolved = in_env(a_one, "getent", "hosts", apt_mirror_host())
    assert resolved.returncode == 0 and resolved.stdout.strip(), resolved.stderr


# Egress ------------------------------------------------------------------------------------


def egress_sets(listing: str) -> str:
    """The part of a listing with the egress sets (egress_none to egress_allowed)."""
    return listing[listing.index("set egress_none") : listing.index("chain input")]


def test_egress_open_none_and_allow_list_apply_while_the_env_runs(tenants: Tenants) -> None:
    a_one = f"{tenants.a}/one"
    assert cloche_json("info", a_one)["egress"] == "open"
    with (
        namespace() as listed,
        namespace() as other,
        listening(listed, HTTP_PORT),
        listening(other, HTTP_PORT),
    ):
        assert connects(a_one, listed.internet, HTTP_PORT)
        assert connects(a_one, other.internet, HTTP_PORT)
        try:
            cloche_ok("egress", a_one, "none")
            assert cloche_json("info", a_one)["egress"] == "none"
            assert not connects(a_one, listed.internet, HTTP_PORT)
            assert not connects(a_one, other.internet, HTTP_PORT)
            # egress is about leaving the host: the tenant's own envs stay reachable
            assert curl_ok(a_one, f"http://{tenants.addresses[f'{tenants.a}/two']}:8080/")

            cloche_ok("egress", a_one, f"allow:{listed.internet}/32")
            assert cloche_json("info", a_one)["egress"] == f"allow:{listed.internet}/32"
            assert connects(a_one, listed.internet, HTTP_PORT)
            assert not connects(a_one, other.internet, HTTP_PORT)
            # another env of the same user keeps its own (open) egress
            assert connects(f"{tenants.a}/two", other.internet, HTTP_PORT)
        finally:
            cloche_ok("egress", a_one, "open")
        assert connects(a_one, other.internet, HTTP_PORT)


def _rule_handles() -> list[str]:
    """Every rule of table inet cloche with its handle: a whole-table replace renumbers them."""
    listing = subprocess.run(
        ["nft", "-a", "list", "table", "inet", "cloche"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return [
        line.strip() for line in listing.splitlines() if "# handle" in line and "comment" in line
    ]


def test_an_egress_change_edits_set_elements_and_leaves_every_rule_in_place(
    tenants: Tenants,
) -> None:
    a_one = f"{tenants.a}/one"
    rules = _rule_handles()
    assert rules
    try:
        cloche_ok("egress", a_one, "none")
        assert tenants.addresses[a_one] in egress_sets(nftables.current_ruleset() or "")
        assert _rule_handles() == rules
    finally:
        cloche_ok("egress", a_one, "open")
    assert tenants.addresses[a_one] not in egress_sets(nftables.current_ruleset() or "")
    assert _rule_handles() == rules


def test_a_bad_egress_policy_is_refused_in_one_sentence(tenants: Tenants) -> None:
    a_one = f"{tenants.a}/one"
    result = cloche("egress", a_one, "allow:10.0.0.300/8")
    assert result.returncode != 0
    message = (result.stderr + result.stdout).strip()
    assert "10.0.0.300/8" in message and "IPv4 network" in message, message
    assert cloche("egress", a_one, "sometimes").returncode != 0
    assert cloche_json("info", a_one)["egress"] == "open"
    assert tenants.addresses[a_one] not in egress_sets(nftables.current_ruleset() or "")


# Protect mode, only ever inside a namespace this test made -----------------------------------


def test_protect_mode_opens_only_public_ports_inside_a_namespace() -> None:
    policy = FirewallPolicy(mode="protect", bridge="clochebr0", gateway=GATEWAY)
    with namespace() as netns, listening(netns, 22, 443, 8081):
        assert all(host_connects(netns.inner, port) for port in (22, 443, 8081))
        assert nftables.apply_ruleset(render_ruleset(policy), netns=netns.name)
        assert "policy drop" in (nftables.current_ruleset(netns=netns.name) or "")
        assert host_connects(netns.inner, 22)
        assert host_connects(netns.inner, 443)
        assert not host_connects(netns.inner, 8081)
        # Loading the same script again changes nothing; a script nft refuses changes nothing.
        assert not nftables.apply_ruleset(render_ruleset(policy), netns=netns.name)
        kept = nftables.current_ruleset(netns=netns.name)
        with pytest.raises(HostFailure, match="nft refused"):
            nftables.apply_ruleset(
                "table inet cloche {}\ndelete table inet cloche\n"
                "table inet cloche { chain input { bogus } }\n",
                netns=netns.name,
            )
        assert nftables.current_ruleset(netns=netns.name) == kept
        assert not host_connects(netns.inner, 8081)
    # The host's own table stayed in open mode (other tests may add envs to it meanwhile).
    assert "policy drop" not in (nftables.current_ruleset() or "")


# Repair ------------------------------------------------------------------------------------


def _repairs_since(moment: datetime) -> list[dict[str, object]]:
    found = []
    for line in AUDIT_LOG.read_text().splitlines():
        event = json.loads(line)
        when = datetime.fromisoformat(str(event["time"]))
        if event["action"] == "repaired firewall" and when >= moment:
            found.append(event)
    return found


def test_the_reconciler_restores_a_deleted_table_and_audits_it_once(tenants: Tenants) -> None:
    assert nftables.current_ruleset() is not None
    started = datetime.now(UTC)
    nftables.delete_ruleset()
    try:
        deadline = time.monotonic() + 75  # the reconciler passes every 60 s
        while nftables.current_ruleset() is None:
            assert time.monotonic() < deadline, "the reconciler did not restore the firewall"
            time.sleep(1)
    finally:
        if nftables.current_ruleset() is None:  # never leave the host without its firewall
            cloche("host", "init")
    restored = nftables.current_ruleset() or ""
    for address, ip in tenants.addresses.items():
        assert f'{ip} comment "{address}"' in restored
    # The repair is audited just after the table is back (the state file is synced first).
    deadline = time.monotonic() + 10
    while not (repairs := _repairs_since(started)) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)  # and only once: a second event would show up here
    repairs = _repairs_since(started)
    assert len(repairs) == 1, repairs
    assert repairs[0]["actor"] == "cloche-reconciler"
    assert not curl_ok(
        f"{tenants.a}/one", f"http://{tenants.addresses[f'{tenants.b}/one']}:{HTTP_PORT}/"
    )


UDP_COUNTER = (
    "import socket, sys\n"
    "server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "server.bind(('0.0.0.0', int(sys.argv[1])))\n"
    "print('ready', flush=True)\n"
    "while True:\n"
    "    data, source = server.recvfrom(64)\n"
    "    print(source[0], data.decode(errors='replace'), flush=True)\n"
)


@contextlib.contextmanager
def udp_received(netns: Namespace, port: int) -> Iterator[list[str]]:
    """Each datagram a listener in netns gets on port, as 'SOURCE PAYLOAD', while inside."""
    counter = subprocess.Popen(
        ["ip", "netns", "exec", netns.name, "python3", "-c", UDP_COUNTER, str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    received: list[str] = []
    try:
        assert counter.stdout is not None
        assert counter.stdout.readline().strip() == "ready"
        stream = counter.stdout
        threading.Thread(
            target=lambda: received.extend(line.strip() for line in iter(stream.readline, "")),
            daemon=True,
        ).start()
        yield received
    finally:
        counter.kill()
        counter.wait(timeout=10)


UDP_SENDER = (
    "import socket, sys, time\n"
    "udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "udp.bind(('0.0.0.0', 40999))\n"
    "deadline = time.time() + 40\n"
    "while time.time() < deadline:\n"
    "    udp.sendto(b'flow', (sys.argv[1], int(sys.argv[2])))\n"
    "    time.sleep(0.1)\n"
)


def test_a_tighter_egress_ends_a_flow_already_established(tenants: Tenants) -> None:
    a_one, port = f"{tenants.a}/one", 5301
    with namespace() as netns, udp_received(netns, port) as received:
        try:
            in_env(
                a_one,
                "sh",
                "-c",
                f'setsid python3 -c "{UDP_SENDER}" {netns.internet} {port} >/dev/null 2>&1 &',
            )
            deadline = time.monotonic() + 10
            while not received:  # positive control: the flow arrives under 'open'
                assert time.monotonic() < deadline, "the flow never arrived"
                time.sleep(0.2)
            cloche_ok("egress", a_one, "none")
            time.sleep(1)
            before = len(received)
            time.sleep(3)
            assert len(received) == before, "the established flow outlived 'egress none'"
        finally:
            cloche_ok("egress", a_one, "open")
