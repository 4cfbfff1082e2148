#!/usr/bin/env python3
"""Benchmark: publishing a port or a domain until it answers, against plain LXD and plain Caddy.

Runs on a host set up by ./scripts/quickstart (with `cloche host init --tls internal`), as root:

    .venv/bin/python bench/publish.py            # N=10 of each, 100 routes already published
    .venv/bin/python bench/publish.py --n 5 --routes 0

One user with one environment serving HTTP on port 8080, made in the same run. Timed, N times:
- tcp: `cloche publish USER/ENV tcp://PORT:22` until the env's sshd banner arrives on the host's
  PORT (through the CLI, and through the API as the SDK does), against `lxc config device add`
  of the same proxy device until the banner arrives; then `cloche unpublish` against
  `lxc config device remove`.
- https: `cloche publish USER/ENV https://DOMAIN:8080` (CLI, and API) until curl gets 200
  through Caddy (with the internal CA), against POSTing the same config straight to Caddy's
  /load until 200; the plain-Caddy side is what cloche's own load does without validation,
  audit, database and firewall. With --routes R, R other https routes are published first, so
  each load carries R+1 routes (the cost of re-rendering and loading the whole config).
Prints medians as JSON. Everything the benchmark makes is removed at the end, even on failure.
Caddy is put back to cloche's config after each hand load; a reconciler pass that falls inside
that window repairs it and audits a "repaired proxy config" (expected, and harmless).
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

from benchlib import CLOCHE, KEY, ROOT, run

sys.path.insert(0, str(ROOT / "src"))
from cloche.client import Client

ROOT_CA = "/var/lib/cloche-caddy/data/caddy/pki/authorities/local/root.crt"
# Caddy's admin API is a unix socket only root may open; on it Caddy wants an empty Host header.
ADMIN = ("--unix-socket", "/run/cloche-caddy/admin.sock", "-H", "Host;")


def wait_for(check: Callable[[], bool], seconds: float = 30) -> None:
    """Poll check every 10 ms until it is true."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for the route to answer")
        time.sleep(0.01)


def banner(port: int) -> bool:
    """True when an SSH banner arrives on the host's port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.settimeout(1)
            return connection.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def closed(port: int) -> bool:
    """True when no SSH banner arrives on the host's port any more."""
    return not banner(port)


def https_ok(domain: str) -> bool:
    """True when https://domain/ answers 200 through Caddy on this host."""
    result = subprocess.run(
        [
            *("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2"),
            *("--resolve", f"{domain}:443:127.0.0.1", "--cacert", ROOT_CA, f"https://{domain}/"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout == "200"


def free_port() -> int:
    """A TCP port nothing on the host listens on."""
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        port: int = probe.getsockname()[1]
    return port


def timed(action: Callable[[], object], ready: Callable[[], bool]) -> float:
    """Seconds from starting action until ready() holds."""
    started = time.monotonic()
    action()
    wait_for(ready)
    return time.monotonic() - started


def median(values: list[float]) -> float:
    """The median, rounded to milliseconds."""
    return round(statistics.median(values), 3)


def bench_tcp(address: str, project: str, env: str, n: int) -> dict[str, float]:
    """cloche publish/unpublish tcp against lxc config device add/remove."""
    cloche_up, cloche_down, api_up, lxd_up, lxd_down = [], [], [], [], []
    user, name = address.split("/")
    for _ in range(n):
        port = free_port()
        with Client() as client:
            publish = partial(client.routes.publish, user, name, f"tcp://{port}:22")
            api_up.append(timed(publish, partial(banner, port)))
            client.routes.unpublish(user, name, f"tcp://{port}:22")
        port = free_port()
        spec = f"tcp://{port}:22"
        answers, silent = partial(banner, port), partial(closed, port)
        cloche_up.append(timed(partial(run, CLOCHE, "publish", address, spec), answers))
        cloche_down.append(timed(partial(run, CLOCHE, "unpublish", address, spec), silent))
        port = free_port()
        answers, silent = partial(banner, port), partial(closed, port)
        device = f"bench-{port}"
        add = ("lxc", "config", "device", "add", env, device, "proxy", "--project", project)
        endpoints = (f"listen=tcp:0.0.0.0:{port}", "connect=tcp:127.0.0.1:22")
        lxd_up.append(timed(partial(run, *add, *endpoints), answers))
        remove = ("lxc", "config", "device", "remove", env, device, "--project", project)
        lxd_down.append(timed(partial(run, *remove), silent))
    return {
        "cloche_cli_publish_s": median(cloche_up),
        "cloche_api_publish_s": median(api_up),
        "lxd_device_add_s": median(lxd_up),
        "cloche_unpublish_s": median(cloche_down),
        "lxd_device_remove_s": median(lxd_down),
    }


def caddy_load(config: dict[str, object]) -> None:
    """POST a whole config to Caddy's admin API, as cloche does."""
    run(
        "curl",
        "-sf",
        *ADMIN,
        "-X",
        "POST",
        "http://localhost/load",
        "-H",
        "Content-Type: application/json",
        "-d",
        json.dumps(config),
    )


def current_caddy_config() -> dict[str, object]:
    """Caddy's live config."""
    return dict(json.loads(run("curl", "-sf", *ADMIN, "http://localhost/config/")))


def bench_https(address: str, n: int) -> dict[str, float]:
    """cloche publish https against loading the same whole config into Caddy directly."""
    cloche_up, api_up, caddy_up = [], [], []
    user, env = address.split("/")
    for _ in range(n):
        # Through the API (the SDK's path): the daemon's own share, without the CLI's start.
        domain = f"a{secrets.token_hex(4)}.test"
        with Client() as client:
            publish = partial(client.routes.publish, user, env, f"https://{domain}:8080")
            api_up.append(timed(publish, partial(https_ok, domain)))
            client.routes.unpublish(user, env, f"https://{domain}:8080")
        domain = f"b{secrets.token_hex(4)}.test"
        spec = f"https://{domain}:8080"
        cloche_up.append(
            timed(partial(run, CLOCHE, "publish", address, spec), partial(https_ok, domain))
        )
        with_route = current_caddy_config()
        run(CLOCHE, "unpublish", address, spec)
        wanted = current_caddy_config()
        # The same config, loaded by hand: the route back under a new name (a new certificate,
        # as cloche's own publish needed) ...
        plain = json.loads(json.dumps(with_route).replace(domain, f"p{domain}"))
        caddy_up.append(timed(partial(caddy_load, plain), partial(https_ok, f"p{domain}")))
        # ... then back to what cloche loaded, so the reconciler finds nothing to repair.
        caddy_load(wanted)
    return {
        "cloche_cli_publish_s": median(cloche_up),
        "cloche_api_publish_s": median(api_up),
        "caddy_load_s": median(caddy_up),
    }


def main() -> None:
    """Run the benchmark and print its medians as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="repetitions of each")
    parser.add_argument("--routes", type=int, default=100, help="https routes published first")
    options = parser.parse_args()
    if not Path(ROOT_CA).exists() and options.n:
        print("note: Caddy's internal CA appears with the first https route", file=sys.stderr)
    user = f"bpub{uuid.uuid4().hex[:6]}"
    address = f"{user}/web"
    results: dict[str, object] = {"n": options.n, "other_https_routes": options.routes}
    try:
        run(CLOCHE, "user", "add", user, "--ssh-key", str(KEY), "--max-envs", "1")
        run(CLOCHE, "create", address, "--cpu", "1", "--memory", "512MiB")
        run(
            CLOCHE,
            "exec",
            address,
            "--root",
            "--",
            "sh",
            "-c",
            "setsid python3 -m http.server 8080 >/dev/null 2>&1 </dev/null &",
        )
        for index in range(options.routes):
            run(CLOCHE, "publish", address, f"https://r{index}-{user}.test:8080")
        results["tcp"] = bench_tcp(address, f"cloche-{user}", "web", options.n)
        results["https"] = bench_https(address, options.n)
    finally:
        subprocess.run(
            [CLOCHE, "user", "rm", user, "--purge", "--yes"], capture_output=True, check=False
        )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
