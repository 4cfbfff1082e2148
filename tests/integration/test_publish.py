"""Publishing for real: Caddy (internal CA) for https://, LXD proxy devices for tcp://, repair.

The client is a network namespace this module creates, joined to the host by a veth pair: it
stands for the internet, and reaches the host only at the pair's root-side address. Real LXD,
real Caddy, real nftables, through the CLI and the daemon.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloche.host import caddy, caddy_home, nftables
from tests.integration import host_services
from tests.integration.cloche_cli import cloche, cloche_json, cloche_ok
from tests.integration.conftest import free_port, lxc
from tests.integration.test_environments import make_user, remove_user
from tests.integration.test_firewall import (
    HTTP_PORT,
    SMALL,
    Namespace,
    env_address,
    in_env,
    namespace,
    serve_http,
)

STATE_DIR = Path("/var/lib/cloche")
AUDIT_LOG = STATE_DIR / "audit.log"
SUBNET = "10.120.0.0/16"


@dataclass
class Site:
    """A user's environment serving a marker file over HTTP on port 8080, and a client netns."""

    user: str
    env: str
    address: str
    marker: str
    client: Namespace

    @property
    def project(self) -> str:
        return f"cloche-{self.user}"


def in_client(
    netns: Namespace, *command: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run a command inside the client namespace."""
    return subprocess.run(
        ["ip", "netns", "exec", netns.name, *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def fetch(site: Site, url: str, *options: str) -> tuple[str, str]:
    """GET url with curl from the client namespace: (body stripped, HTTP status or '000')."""
    result = in_client(
        site.client, "curl", "-sS", "--max-time", "8", "-w", "\n%{http_code}", *options, url
    )
    body, _, status = result.stdout.rpartition("\n")
    return body.strip(), status.strip()


def fetch_https(site: Site, domain: str, path: str = "/marker.txt") -> tuple[str, str]:
    """GET https://domain/path from the client, DNS pinned to the host, trusting Caddy's CA."""
    return fetch(
        site,
        f"https://{domain}{path}",
        "--resolve",
        f"{domain}:443:{site.client.outer}",
        "--cacert",
        str(caddy_home.root_certificate_path(STATE_DIR)),
    )


def until(check: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll check() until it is true; fail naming what did not happen."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what} within {seconds:.0f} s"
        time.sleep(0.5)


def device_names(site: Site) -> list[str]:
    listed = lxc("config", "device", "list", site.env, "--project", site.project)
    return listed.stdout.split()


def client_connects(site: Site, host: str, port: int) -> bool:
    """True when a TCP connection from the client namespace opens within 3 s."""
    probe = (
        "import socket, sys\n"
        "try:\n"
        "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()\n"
        "except OSError:\n"
        "    sys.exit(1)\n"
    )
    return in_client(site.client, "python3", "-c", probe, host, str(port)).returncode == 0


def ssh_banner(site: Site, port: int) -> str:
    """The first line a TCP server on the host's port sends the client, or ''."""
    probe = (
        "import socket, sys\n"
        "try:\n"
        "    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as s:\n"
        "        s.settimeout(3)\n"
        "        print(s.recv(64).decode(errors='replace').splitlines()[0])\n"
        "except (OSError, IndexError):\n"
        "    sys.exit(1)\n"
    )
    return in_client(site.client, "python3", "-c", probe, site.client.outer, str(port)).stdout


def audited_since(moment: datetime, action: str) -> list[dict[str, object]]:
    found = []
    for line in AUDIT_LOG.read_text().splitlines():
        event = json.loads(line)
        if event["action"] == action and datetime.fromisoformat(str(event["time"])) >= moment:
            found.append(event)
    return found


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    # Caddy's internal CA: this machine has no public DNS name for an ACME certificate.
    cloche_ok("host", "init", "--tls", "internal")
    user = make_user("--max-envs", "2", "--cpu", "2", "--memory", "2GiB", "--disk", "30GiB")
    try:
        address = f"{user}/web"
        cloche_ok("create", address, *SMALL)
        marker = f"served by {address} {secrets.token_hex(4)}"
        in_env(address, "sh", "-c", f"echo '{marker}' > /root/marker.txt")
        serve_http(address)
        with namespace() as client:
            # The client may route to the environments' range through the host: only the
            # firewall keeps it out, which is what the first test shows.
            subprocess.run(
                ["ip", "-n", client.name, "route", "add", SUBNET, "via", client.outer],
                check=True,
                capture_output=True,
            )
            yield Site(user, "web", env_address(address), marker, client)
    finally:
        remove_user(user)


def test_a_server_on_all_addresses_is_private_until_published(site: Site) -> None:
    # The host itself reaches it (Caddy and proxy devices connect from here) ...
    assert (
        in_env(
            f"{site.user}/{site.env}", "curl", "-sf", f"http://127.0.0.1:{HTTP_PORT}/marker.txt"
        ).returncode
        == 0
    )
    # ... but from outside neither the environment's address nor the host's port answers.
    assert not client_connects(site, site.address, HTTP_PORT)
    assert not client_connects(site, site.client.outer, HTTP_PORT)
    assert fetch_https(site, f"{site.user}.test")[0] != site.marker


def test_https_route_answers_through_caddy_for_its_host_name_only(site: Site) -> None:
    domain = f"app-{site.user}.test"
    spec = f"https://{domain}:{HTTP_PORT}"
    published = cloche_json("publish", f"{site.user}/{site.env}", spec)
    assert published["public"] == f"https://{domain}/"
    assert published["target"] == f"{site.address}:{HTTP_PORT}"
    try:
        # Caddy gets the certificate from its internal CA in the background, just after the load.
        until(
            lambda: fetch_https(site, domain) == (site.marker, "200"),
            20,
            f"https://{domain} did not answer with the marker",
        )
        # Another name on the same address is not this route.
        other = fetch(
            site,
            f"https://other-{site.user}.test/marker.txt",
            "--resolve",
            f"other-{site.user}.test:443:{site.client.outer}",
            "-k",
        )
        assert site.marker not in other[0]
        # The route follows the environment: stopped -> 502 from Caddy, started -> back.
        cloche_ok("stop", f"{site.user}/{site.env}")
        assert fetch_https(site, domain)[1] == "502"
        cloche_ok("start", f"{site.user}/{site.env}")
        serve_http(f"{site.user}/{site.env}")
        assert fetch_https(site, domain) == (site.marker, "200")
        listed = cloche_json("routes", f"{site.user}/{site.env}")
        assert [route["spec"] for route in listed] == [spec]
    finally:
        unpublished = cloche("unpublish", f"{site.user}/{site.env}", spec)
    assert unpublished.returncode == 0, unpublished.stderr
    assert site.marker not in fetch_https(site, domain)[0]
    assert cloche_json("routes", f"{site.user}/{site.env}") == []
    live = json.dumps(caddy.current_config())
    assert domain not in live


def test_tcp_route_reaches_the_environments_sshd_and_goes_away(site: Site) -> None:
    port = free_port("0.0.0.0")
    spec = f"tcp://{port}:22"
    assert not ssh_banner(site, port)
    cloche_ok("publish", f"{site.user}/{site.env}", spec)
    try:
        assert f"cloche-tcp-{port}" in device_names(site)
        assert str(port) in (nftables.current_ruleset() or "")
        until(lambda: ssh_banner(site, port).startswith("SSH-2.0-OpenSSH"), 10, "no SSH banner")
    finally:
        unpublished = cloche("unpublish", f"{site.user}/{site.env}", spec)
    assert unpublished.returncode == 0, unpublished.stderr
    assert f"cloche-tcp-{port}" not in device_names(site)
    assert str(port) not in (nftables.current_ruleset() or "")
    assert not ssh_banner(site, port)


UDP_ECHO = (
    "import socket, sys\n"
    "server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "server.bind(('127.0.0.1', int(sys.argv[1])))\n"
    "while True:\n"
    "    data, peer = server.recvfrom(512)\n"
    "    server.sendto(b'echo ' + data, peer)\n"
)

UDP_ASK = (
    "import socket, sys\n"
    "client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "client.settimeout(1)\n"
    "for _ in range(5):\n"
    "    client.sendto(b'ping', (sys.argv[1], int(sys.argv[2])))\n"
    "    try:\n"
    "        print(client.recvfrom(512)[0].decode())\n"
    "        break\n"
    "    except OSError:\n"
    "        pass\n"
)


def test_udp_route_reaches_a_loopback_only_service_inside(site: Site) -> None:
    env_port, host_port = 5300 + secrets.randbelow(100), free_port("0.0.0.0")
    address = f"{site.user}/{site.env}"
    script = f'setsid python3 -c "{UDP_ECHO}" {env_port} >/dev/null 2>&1 </dev/null &'
    in_env(address, "sh", "-c", script)

    def echo() -> str:
        asked = in_client(site.client, "python3", "-c", UDP_ASK, site.client.outer, str(host_port))
        return asked.stdout.strip()

    assert echo() == ""
    cloche_ok("publish", address, f"udp://{host_port}:{env_port}")
    try:
        until(lambda: echo() == "echo ping", 15, "no UDP echo through the published port")
    finally:
        cloche_ok("unpublish", address, f"udp://{host_port}:{env_port}")
    assert f"cloche-udp-{host_port}" not in device_names(site)
    assert echo() == ""


def test_bad_specs_taken_ports_and_auth_are_refused_in_one_sentence(site: Site) -> None:
    address = f"{site.user}/{site.env}"
    bad = cloche("publish", address, "tcp://99999:22")
    assert bad.returncode == 2 and "position 6" in bad.stderr, bad.stderr
    auth = cloche("publish", address, f"https://{site.user}.test@auth")
    assert auth.returncode == 2 and "needs OIDC, not configured yet" in auth.stderr, auth.stderr
    with socket.create_server(("0.0.0.0", 0)) as taken:
        port = taken.getsockname()[1]
        busy = cloche("publish", address, f"tcp://{port}:22")
    assert busy.returncode == 4 and "already in use" in busy.stderr, busy.stderr
    assert cloche_json("routes", address) == []
    assert not any(name.startswith("cloche-") for name in device_names(site))


def test_the_reconciler_restores_a_removed_device_and_caddy_config(site: Site) -> None:
    address = f"{site.user}/{site.env}"
    port = free_port("0.0.0.0")
    domain = f"fix-{site.user}.test"
    cloche_ok("publish", address, f"tcp://{port}:22")
    cloche_ok("publish", address, f"https://{domain}:{HTTP_PORT}")
    try:
        until(lambda: fetch_https(site, domain)[1] == "200", 20, "no https answer")
        started = datetime.now(UTC)
        lxc("config", "device", "remove", site.env, f"cloche-tcp-{port}", "--project", site.project)
        host_services.caddy_admin("DELETE", "/config/apps/http").raise_for_status()
        assert f"cloche-tcp-{port}" not in device_names(site)
        assert fetch_https(site, domain)[1] != "200"
        # The reconciler passes every 60 s.
        until(
            lambda: (
                f"cloche-tcp-{port}" in device_names(site) and fetch_https(site, domain)[1] == "200"
            ),
            80,
            "the reconciler did not restore the device and Caddy's config",
        )
        assert ssh_banner(site, port).startswith("SSH-2.0-OpenSSH")
        devices = audited_since(started, "repaired devices")
        assert [event["target"] for event in devices] == [address], devices
        configs = audited_since(started, "repaired proxy config")
        assert [event["details"] for event in configs] == [{"was": "changed by hand"}], configs
    finally:
        cloche("unpublish", address, f"tcp://{port}:22")
        cloche("unpublish", address, f"https://{domain}:{HTTP_PORT}")


def test_removing_an_environment_removes_its_routes(site: Site) -> None:
    address = f"{site.user}/gone"
    domain = f"gone-{site.user}.test"
    cloche_ok("create", address, *SMALL)
    cloche_ok("publish", address, f"https://{domain}")
    assert domain in json.dumps(caddy.current_config())
    cloche_ok("rm", address, "--yes")
    assert cloche_json("routes", site.user) == []
    assert domain not in json.dumps(caddy.current_config())
