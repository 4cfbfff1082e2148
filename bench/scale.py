#!/usr/bin/env python3
"""Benchmark: idle memory per environment, parallel creates and API latency, against plain LXD.

Runs on a host set up by ./scripts/quickstart, as root:

    .venv/bin/python bench/scale.py                  # K=20 idle environments, P=5 parallel creates
    .venv/bin/python bench/scale.py --k 10 --p 3 --idle 30 --requests 50

Plain LXD does the same work in the same run: `lxc init` of the same image (cloche/bookworm) with
cloche's base profile (`cloche`) and the same limits (1 CPU, 512MiB), `lxc start`, and
`systemctl is-system-running --wait` through `lxc exec` (what cloche's create waits for).

1. Parallel creates: one warm-up create first (the user's first create also builds their
   template; not timed), then P `cloche create --no-wait` at once and `cloche operation ID
   --wait` for each, against P plain `lxc init` + `lxc start` + systemd wait at once. Wall time
   for all P, and each environment's time from the start until it was ready. Removed afterwards.
2. Idle memory: K cloche environments (created one after another), then K plain containers; each
   set is waited on until systemd answers in every container, left idle, then each container's
   memory.usage is read from LXD, and the host's MemAvailable drop over the set is divided by K.
3. API latency, with the K cloche environments existing (before the plain set is made, so LXD's
   all-projects listing is not swollen by it): GET /v1/environments and
   GET /v1/environments/USER/NAME through cloche's API client, against the LXD requests they are
   built on, sent straight to LXD's unix socket: the user's project with recursion=2 (cloche
   makes one such request per user), all projects with recursion=2, and an instance plus its
   state. Requests alternate, N each.
Prints medians as JSON. Everything the benchmark makes is deleted at the end, even on failure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from benchlib import CLOCHE, KEY, ROOT, run

sys.path.insert(0, str(ROOT / "src"))
from cloche.client import Client

LXD_SOCKET = "/var/lib/lxd/unix.socket"
IMAGE, PROFILE = "cloche/bookworm", "cloche"
CPU, MEMORY, DISK = 1, "512MiB", "2GiB"
MIB = 1024 * 1024


def mem_available() -> int:
    """The host's MemAvailable in bytes."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def wait_booted(name: str, project: str) -> str:
    """Block until systemd in the container has finished booting; return its state word."""
    deadline = time.monotonic() + 300
    while True:
        result = subprocess.run(
            [
                *("lxc", "exec", name, "--project", project, "--"),
                *("systemctl", "is-system-running", "--wait"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        state = result.stdout.strip()
        # 'running' or 'degraded' both mean the boot is over; anything else (exec refused while
        # the container is still starting, 'offline') is retried.
        if state in ("running", "degraded"):
            return state
        if time.monotonic() > deadline:
            raise TimeoutError(f"{project}/{name}: systemd answered {state!r}")
        time.sleep(0.1)


def memory_usage(name: str, project: str) -> int:
    """The container's memory use in bytes, as LXD reports it (its cgroup's usage)."""
    state = json.loads(run("lxc", "query", f"/1.0/instances/{name}/state?project={project}"))
    return int(state["memory"]["usage"])


# LXD 5.0.2 races when isolated idmaps are allocated by concurrent `lxc init`s: an instance not
# yet given its map is taken to hold [0, 65536), the next one gets 65536 (outside /etc/subuid)
# and fails to start (fixed in Incus by lxc/incus#1495). The inits are therefore serialized; the
# starts (the remap of the rootfs, the boot) still run at once.
INIT_LOCK = threading.Lock()


def plain_create(name: str) -> None:
    """lxc init + lxc start of cloche's image with its base profile and the same limits."""
    with INIT_LOCK:
        run(
            *("lxc", "init", IMAGE, name, "--profile", PROFILE),
            *("-c", f"limits.cpu={CPU}", "-c", f"limits.memory={MEMORY}"),
        )
    run("lxc", "start", name)


def plain_delete(name: str) -> None:
    """Delete a plain container, retrying while LXD is still busy with it; warn if it stays."""
    for _ in range(5):
        result = subprocess.run(
            ["lxc", "delete", "--force", name], capture_output=True, text=True, check=False
        )
        if result.returncode == 0 or "not found" in result.stderr.lower():
            return
        time.sleep(2)
    print(f"warning: could not delete {name}: {result.stderr.strip()}", file=sys.stderr)


def cloche_create_args(user: str, name: str) -> list[str]:
    """The argv of one cloche create with the benchmark's limits."""
    limits = ("--cpu", str(CPU), "--memory", MEMORY, "--disk", DISK)
    return [CLOCHE, "create", f"{user}/{name}", *limits]


def parallel(jobs: list[Callable[[], None]]) -> tuple[float, list[float]]:
    """Run jobs at once; wall seconds for all, and each job's seconds from the common start."""
    started = time.monotonic()

    def timed(job: Callable[[], None]) -> float:
        job()
        return time.monotonic() - started

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        finished = list(pool.map(timed, jobs))
    return time.monotonic() - started, finished


def bench_parallel(user: str, p: int, plain_names: list[str]) -> dict[str, float]:
    """P creates at once with cloche and with plain LXD; the environments are removed after."""
    names = [f"p{index}" for index in range(p)]

    def cloche_one(name: str) -> None:
        operation = run(*cloche_create_args(user, name), "--no-wait").strip()
        run(CLOCHE, "operation", operation, "--wait")

    cloche_wall, cloche_each = parallel([partial(cloche_one, name) for name in names])
    print(f"  cloche: {p} creates in {cloche_wall:.2f} s", flush=True)
    for name in names:
        info = json.loads(run(CLOCHE, "info", f"{user}/{name}", "--json"))
        assert info["status"] == "ready" and info["state"] == "Running", info

    plain = [f"bench-scale-{uuid.uuid4().hex[:6]}" for _ in range(p)]
    plain_names.extend(plain)

    def plain_one(name: str) -> None:
        plain_create(name)
        wait_booted(name, "default")

    plain_wall, plain_each = parallel([partial(plain_one, name) for name in plain])
    print(f"  plain LXD: {p} creates in {plain_wall:.2f} s", flush=True)

    for name in names:
        run(CLOCHE, "rm", f"{user}/{name}", "--yes")
    for name in plain:
        plain_delete(name)
        plain_names.remove(name)
    return {
        "cloche_wall_s": round(cloche_wall, 2),
        "cloche_wall_per_env_s": round(cloche_wall / p, 2),
        "cloche_median_ready_s": round(statistics.median(cloche_each), 2),
        "plain_lxd_wall_s": round(plain_wall, 2),
        "plain_lxd_wall_per_env_s": round(plain_wall / p, 2),
        "plain_lxd_median_ready_s": round(statistics.median(plain_each), 2),
        "ratio_wall_cloche_to_plain": round(cloche_wall / plain_wall, 2),
    }


def idle_memory(names: list[str], project: str, idle: float, before: int) -> dict[str, Any]:
    """Wait for every container to boot, idle, then per-container usage and MemAvailable drop."""
    states = [wait_booted(name, project) for name in names]
    time.sleep(idle)
    usages = [memory_usage(name, project) / MIB for name in names]
    drop = (before - mem_available()) / MIB
    return {
        "usage_median_mib": round(statistics.median(usages), 1),
        "usage_mean_mib": round(statistics.mean(usages), 1),
        "usage_min_mib": round(min(usages), 1),
        "usage_max_mib": round(max(usages), 1),
        "memavailable_drop_per_env_mib": round(drop / len(names), 1),
        "systemd_states": sorted(set(states)),
    }


def timed_get(get: Callable[[], Any]) -> float:
    """Milliseconds one request takes."""
    started = time.perf_counter()
    get()
    return (time.perf_counter() - started) * 1000


def bench_api(user: str, project: str, names: list[str], n: int) -> dict[str, float]:
    """cloche's listing and info against the LXD requests they are built on, alternating."""
    samples: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    lxd = httpx.Client(transport=httpx.HTTPTransport(uds=LXD_SOCKET), base_url="http://lxd")

    def lxd_get(path: str, **params: str) -> Any:
        response = lxd.get(path, params=params)
        response.raise_for_status()
        return response.json()["metadata"]

    def lxd_instance(name: str) -> tuple[Any, Any]:
        return (
            lxd_get(f"/1.0/instances/{name}", project=project),
            lxd_get(f"/1.0/instances/{name}/state", project=project),
        )

    with Client() as client, lxd:
        # One untimed round first: connections opened, caches warm on both sides.
        counts["cloche_list_envs"] = len(client.environments.list())
        counts["lxd_all_projects_instances"] = len(
            lxd_get("/1.0/instances", recursion="2", **{"all-projects": "true"})
        )
        for index in range(n):
            name = names[index % len(names)]
            requests: dict[str, Callable[[], Any]] = {
                "cloche_list_ms": client.environments.list,
                "lxd_project_recursion2_ms": lambda: lxd_get(
                    "/1.0/instances", recursion="2", project=project
                ),
                "lxd_all_projects_recursion2_ms": lambda: lxd_get(
                    "/1.0/instances", recursion="2", **{"all-projects": "true"}
                ),
                "cloche_info_ms": partial(client.environments.get, user, name),
                "lxd_instance_plus_state_ms": partial(lxd_instance, name),
            }
            for label, get in requests.items():
                samples.setdefault(label, []).append(timed_get(get))
    result: dict[str, float] = {key: round(statistics.median(v), 1) for key, v in samples.items()}
    result["ratio_list_cloche_to_lxd_project"] = round(
        result["cloche_list_ms"] / result["lxd_project_recursion2_ms"], 2
    )
    result["ratio_info_cloche_to_lxd"] = round(
        result["cloche_info_ms"] / result["lxd_instance_plus_state_ms"], 2
    )
    return result | counts


def main() -> None:
    """Run the three measurements and print medians as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=20, help="idle environments of each kind")
    parser.add_argument("--p", type=int, default=5, help="creates at once of each kind")
    parser.add_argument("--idle", type=float, default=30, help="seconds idle before reading")
    parser.add_argument("--requests", type=int, default=50, help="requests of each kind")
    arguments = parser.parse_args()
    k, p = arguments.k, arguments.p

    status = json.loads(run(CLOCHE, "host", "status", "--json"))
    assert all(item["ok"] for item in status), "run ./scripts/quickstart first"
    user = f"bench{uuid.uuid4().hex[:6]}"
    total = k + p + 1
    run(
        *(CLOCHE, "user", "add", user, "--ssh-key", str(KEY)),
        *("--max-envs", str(total), "--cpu", str(total * CPU)),
        *("--memory", f"{total * 512}MiB", "--disk", f"{total * 2}GiB"),
    )
    project = json.loads(run(CLOCHE, "user", "show", user, "--json"))["project"]
    plain_names: list[str] = []
    summary: dict[str, Any] = {"k": k, "p": p, "idle_s": arguments.idle}
    started = time.monotonic()
    try:
        print("warm-up create (builds the user's template) ...", flush=True)
        run(*cloche_create_args(user, "warmup"))
        print(f"parallel creates, P={p} of each:", flush=True)
        summary["parallel_creates"] = bench_parallel(user, p, plain_names)
        run(CLOCHE, "rm", f"{user}/warmup", "--yes")
        time.sleep(10)  # let the removals' memory and btrfs work settle before the baseline

        print(f"idle memory: {k} cloche environments ...", flush=True)
        names = [f"e{index}" for index in range(k)]
        before = mem_available()
        for name in names:
            run(*cloche_create_args(user, name))
        cloche_memory = idle_memory(names, project, arguments.idle, before)
        print(f"  {cloche_memory}", flush=True)

        print(f"API latency with {k} environments, N={arguments.requests} each ...", flush=True)
        summary["api_latency"] = bench_api(user, project, names, arguments.requests)

        print(f"idle memory: {k} plain LXD containers ...", flush=True)
        before = mem_available()
        plain = [f"bench-scale-{uuid.uuid4().hex[:6]}" for _ in range(k)]
        for name in plain:
            plain_names.append(name)
            plain_create(name)
        plain_memory = idle_memory(plain, "default", arguments.idle, before)
        print(f"  {plain_memory}", flush=True)
        summary["idle_memory"] = {"cloche": cloche_memory, "plain_lxd": plain_memory}
        summary["run_s"] = round(time.monotonic() - started)
    finally:
        for name in plain_names:
            plain_delete(name)
        subprocess.run(
            [CLOCHE, "user", "rm", user, "--purge", "--yes"],
            capture_output=True,
            check=False,
            timeout=3600,
        )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
