#!/usr/bin/env python3
"""Benchmark: `ssh <env> true` through the host's jump account, against ssh straight to the env.

Runs on a host set up by ./scripts/quickstart, as root:

    .venv/bin/python bench/ssh_latency.py --n 20

Both paths use the same key, the same environment and pinned host keys; the direct path connects
from the host to the environment's bridge address (what the jump does internally), so the
difference is the cost of the extra hop through the host's sshd.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path

from benchlib import CLOCHE
from benchlib import run as run_command

# This benchmark's waits are bounded at 600 s, not the shared default.
run = partial(run_command, timeout=600)


def timed(argv: list[str]) -> float:
    """Seconds one command takes; it must succeed."""
    started = time.monotonic()
    run(*argv)
    return time.monotonic() - started


def main() -> None:
    """Measure both paths alternately and print medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="connections of each kind")
    arguments = parser.parse_args()
    user = f"sshbench{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as directory:
        key = Path(directory) / "key"
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
        run(CLOCHE, "user", "add", user, "--ssh-key", f"{key}.pub")
        try:
            run(CLOCHE, "create", f"{user}/box")
            known = Path(directory) / "known_hosts"
            config = Path(directory) / "config"
            generated = run(
                CLOCHE, "ssh-config", user, "--host", "127.0.0.1", "--known-hosts", str(known)
            )
            config.write_text(
                generated + f"\nHost *\n    IdentityFile {key}\n"
                "    IdentitiesOnly yes\n    BatchMode yes\n"
            )
            address = json.loads(run(CLOCHE, "info", f"{user}/box", "--json"))["address"]
            through_jump = ["ssh", "-F", str(config), "box", "true"]
            direct = [
                "ssh",
                "-F",
                str(config),
                "-o",
                "ProxyJump=none",
                "-o",
                f"HostName={address}",
                "box",
                "true",
            ]
            timed(through_jump)  # warm both paths once
            timed(direct)
            jump_times, direct_times = [], []
            for _ in range(arguments.n):
                jump_times.append(timed(through_jump))
                direct_times.append(timed(direct))
        finally:
            subprocess.run(
                [CLOCHE, "user", "rm", user, "--purge", "--yes"],
                capture_output=True,
                check=False,
                timeout=600,
            )
    jump, straight = statistics.median(jump_times), statistics.median(direct_times)
    print(
        json.dumps(
            {
                "n": arguments.n,
                "through_jump_median_s": round(jump, 3),
                "direct_median_s": round(straight, 3),
                "jump_overhead_s": round(jump - straight, 3),
                "ratio": round(jump / straight, 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
