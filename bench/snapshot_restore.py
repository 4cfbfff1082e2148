#!/usr/bin/env python3
"""Benchmark: snapshot and restore-in-place time with 10 MiB vs 1 GiB written in the environment.

Runs on a host set up by ./scripts/quickstart, as root:

    .venv/bin/python bench/snapshot_restore.py          # N=3 of each, for each size
    .venv/bin/python bench/snapshot_restore.py --n 5

One user and one environment per data size, made in the same run. For each size, the data is
written once (urandom, synced), then N times: `cloche snapshot` (CLI to API to LXD, timed until
the command returns) and `cloche restore` in place (timed until the command returns, which is
when systemd inside reports running again). On a copy-on-write pool both should stay flat as the
data grows. Prints the medians as JSON. Everything the benchmark makes is deleted at the end, even
when it fails.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
import uuid

from benchlib import CLOCHE, KEY, run

SIZES_MIB = {"10MiB": 10, "1GiB": 1024}


def timed(*argv: str) -> float:
    """Seconds a command took (it must succeed)."""
    started = time.monotonic()
    run(*argv)
    return time.monotonic() - started


def measure(address: str, mib: int, n: int) -> dict[str, object]:
    """Write mib MiB into the environment, then time n snapshots and n restores in place."""
    script = f"head -c {mib}M /dev/urandom > /root/data && sync && du -sm /root/data"
    written = run(CLOCHE, "exec", address, "--root", "--", "sh", "-c", script).split()[0]
    snapshot_seconds, restore_seconds = [], []
    for index in range(n):
        label = f"bench-{index}"
        snapshot_seconds.append(timed(CLOCHE, "snapshot", address, label))
        restore_seconds.append(timed(CLOCHE, "restore", address, label))
    return {
        "data_mib": int(written),
        "snapshot_s": round(statistics.median(snapshot_seconds), 2),
        "restore_in_place_s": round(statistics.median(restore_seconds), 2),
        "snapshot_all_s": [round(value, 2) for value in snapshot_seconds],
        "restore_all_s": [round(value, 2) for value in restore_seconds],
    }


def main() -> None:
    """Run the benchmark and print its medians as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3, help="repetitions per size")
    options = parser.parse_args()
    user = f"bsnap{uuid.uuid4().hex[:6]}"
    results: dict[str, object] = {"n": options.n}
    try:
        run(CLOCHE, "user", "add", user, "--ssh-key", str(KEY), "--max-envs", "2")
        for size in SIZES_MIB:
            run(CLOCHE, "create", f"{user}/s{size.lower()}", "--disk", "5GiB")
        for size, mib in SIZES_MIB.items():
            results[size] = measure(f"{user}/s{size.lower()}", mib, options.n)
    finally:
        subprocess.run(
            [CLOCHE, "user", "rm", user, "--purge", "--yes"], capture_output=True, check=False
        )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
