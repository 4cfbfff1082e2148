#!/usr/bin/env python3
"""Benchmark: from 'create' until the environment answers on port 22, cloche against plain LXD.

Runs on a host set up by ./scripts/quickstart, as root:

    .venv/bin/python bench/create_to_ssh.py            # N=10 each, then the 101st with 100 running
    .venv/bin/python bench/create_to_ssh.py --n 5 --crowd 0

Plain LXD does the same work in the same run: `lxc init` of the same image with cloche's base
profile, `lxc start`, wait for an IPv4 address, wait for an SSH banner. cloche's create also
copies the user's template, applies limits, waits for systemd and writes the user's account.
Everything the benchmark makes is deleted at the end, even when it fails.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from functools import partial

from benchlib import CLOCHE, KEY
from benchlib import run as run_command

# This benchmark's waits are bounded at 600 s, not the shared default.
run = partial(run_command, timeout=600)


def wait_for_ssh(address: str, timeout: float = 120) -> None:
    """Wait until address:22 sends an SSH banner."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, 22), timeout=1) as connection:
                if connection.recv(16).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{address}:22 did not answer")


def lxd_address(name: str, project: str = "default", timeout: float = 120) -> str:
    """Wait for the instance's IPv4 on eth0."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = json.loads(run("lxc", "query", f"/1.0/instances/{name}/state?project={project}"))
        for address in (state.get("network") or {}).get("eth0", {}).get("addresses", []):
            if address["family"] == "inet":
                return str(address["address"])
        time.sleep(0.05)
    raise TimeoutError(f"{name} got no IPv4 address")


def cloche_create(user: str, name: str, *options: str) -> float:
    """Seconds from 'cloche create' until port 22 answers."""
    started = time.monotonic()
    run(CLOCHE, "create", f"{user}/{name}", *options)
    info = json.loads(run(CLOCHE, "info", f"{user}/{name}", "--json"))
    wait_for_ssh(info["address"])
    return time.monotonic() - started


def plain_lxd_create(name: str, image: str, profile: str) -> float:
    """Seconds from 'lxc init' until port 22 answers."""
    started = time.monotonic()
    run("lxc", "init", image, name, "--profile", profile)
    run("lxc", "start", name)
    wait_for_ssh(lxd_address(name))
    return time.monotonic() - started


def median(values: list[float]) -> float:
    """The median, rounded for printing."""
    return round(statistics.median(values), 2)


def measure(label: str, action: Callable[[], float], results: dict[str, list[float]]) -> None:
    """Run one timed action and file it under label."""
    seconds = action()
    results.setdefault(label, []).append(seconds)
    print(f"  {label:28} {seconds:6.2f} s", flush=True)


def main() -> None:
    """Run the benchmark and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="creates of each kind (default 10)")
    parser.add_argument("--crowd", type=int, default=100, help="environments before the last one")
    arguments = parser.parse_args()

    config = run(CLOCHE, "host", "status", "--json")
    assert all(item["ok"] for item in json.loads(config)), "run ./scripts/quickstart first"
    image, profile = "cloche/bookworm", "cloche"
    user = f"bench{uuid.uuid4().hex[:6]}"
    total = arguments.n + arguments.crowd + 1
    run(
        CLOCHE,
        "user",
        "add",
        user,
        "--ssh-key",
        str(KEY),
        "--max-envs",
        str(total),
        "--cpu",
        str(total),
        "--memory",
        f"{total * 256}MiB",
        "--disk",
        f"{total * 2}GiB",
    )
    plain_names: list[str] = []
    env_options = ("--memory", "256MiB", "--disk", "2GiB")
    results: dict[str, list[float]] = {}
    try:
        print(f"create until port 22 answers, N={arguments.n} each, alternating:")
        for index in range(arguments.n):
            measure(
                "cloche create", lambda i=index: cloche_create(user, f"a{i}", *env_options), results
            )
            name = f"bench-plain-{uuid.uuid4().hex[:6]}"
            plain_names.append(name)
            measure(
                "plain LXD init+start", lambda n=name: plain_lxd_create(n, image, profile), results
            )
        if arguments.crowd:
            print(f"filling the host to {arguments.crowd} environments ...", flush=True)
            for index in range(arguments.n, arguments.crowd):
                run(CLOCHE, "create", f"{user}/c{index}", *env_options)
            measure(
                f"cloche create #{arguments.crowd + 1}",
                lambda: cloche_create(user, "last", *env_options),
                results,
            )
    finally:
        for name in plain_names:
            subprocess.run(["lxc", "delete", "--force", name], capture_output=True, check=False)
        subprocess.run(
            [CLOCHE, "user", "rm", user, "--purge", "--yes"],
            capture_output=True,
            check=False,
            timeout=3600,
        )
    cloche_median = median(results["cloche create"])
    plain_median = median(results["plain LXD init+start"])
    summary = {
        "cloche_create_median_s": cloche_median,
        "plain_lxd_median_s": plain_median,
        "ratio_cloche_to_plain": round(cloche_median / plain_median, 2),
    }
    crowded = [key for key in results if key.startswith("cloche create #")]
    if crowded:
        last = results[crowded[0]][0]
        first = results["cloche create"][0]
        # The user's first create also makes their template (one remap); later ones copy it.
        summary |= {
            "first_create_with_template_s": round(first, 2),
            "create_with_crowd_s": round(last, 2),
            "ratio_crowded_to_median": round(last / cloche_median, 2),
        }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
