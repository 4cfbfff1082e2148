#!/usr/bin/env python3
"""Benchmark: how long a CLI command takes, mostly its own start-up, against plain tools.

Runs on a host set up by ./scripts/quickstart, as root:

    .venv/bin/python bench/cli_startup.py            # 20 environments, 20 runs of each command
    .venv/bin/python bench/cli_startup.py --envs 0   # start-up only, nothing created
    .venv/bin/python bench/cli_startup.py --baseline OTHER/.venv/bin/cloche   # before/after

--baseline times another installation's CLI (say, a checkout of an older commit with its own
virtual environment) on the same commands, environments and daemon, in the same run.

Made in the same run: one user with --envs small environments. Timed (median wall time of
--runs runs, each a new process):
- `cloche --version` (start-up alone) against `python3 -c pass` (the interpreter's own start);
- `cloche list --user USER` with the envs, against `lxc list --project PROJECT --format csv`
  (plain LXD listing the same instances with their state);
- `cloche list --user USER --json`.
Also prints the modules that cost most to import for `cloche --version` (python -X importtime).
Prints JSON. The user and its environments are removed at the end, even on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchlib import CLOCHE, KEY, run

PYTHON = str(Path(CLOCHE).parent / "python")


def median_seconds(argv: list[str], runs: int) -> float:
    """The median wall time of argv over runs fresh processes (each must succeed)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, timeout=120)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 3)


def heaviest_imports(count: int = 8) -> list[tuple[str, float]]:
    """The modules whose import (with what they import) took longest for `cloche --version`."""
    result = subprocess.run(
        [PYTHON, "-X", "importtime", "-m", "cloche", "--version"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    rows = []
    for line in result.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((parts[2].rstrip(), int(parts[1]) / 1e6))
    top_level = [(name.strip(), seconds) for name, seconds in rows if not name.startswith("  ")]
    return sorted(top_level, key=lambda row: row[1], reverse=True)[:count]


def measure(cloche: str, user: str, envs: int, runs: int) -> dict[str, float]:
    """The commands' medians for one CLI installation."""
    results = {"cloche --version": median_seconds([cloche, "--version"], runs)}
    if envs:
        listing = [cloche, "list", "--user", user]
        results["cloche list"] = median_seconds(listing, runs)
        results["cloche list --json"] = median_seconds([*listing, "--json"], runs)
    return results


def main() -> None:
    """Set up, measure, print, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=20)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--baseline", help="another installation's cloche to time the same way")
    arguments = parser.parse_args()
    user = f"bcli{secrets.token_hex(3)}"
    results: dict[str, object] = {"envs": arguments.envs, "runs": arguments.runs}
    try:
        if arguments.envs:
            run(
                CLOCHE,
                "user",
                "add",
                user,
                "--ssh-key",
                str(KEY),
                "--max-envs",
                str(arguments.envs),
                "--cpu",
                str(arguments.envs),
                "--memory",
                f"{arguments.envs * 256}MiB",
                "--disk",
                f"{arguments.envs}GiB",
            )
            for index in range(arguments.envs):
                run(
                    CLOCHE,
                    "create",
                    f"{user}/e{index}",
                    "--memory",
                    "256MiB",
                    "--disk",
                    "1GiB",
                    timeout=300,
                )
        results["python -c pass"] = median_seconds([sys.executable, "-c", "pass"], arguments.runs)
        results["this cloche"] = measure(CLOCHE, user, arguments.envs, arguments.runs)
        if arguments.baseline:
            results["baseline cloche"] = measure(
                arguments.baseline, user, arguments.envs, arguments.runs
            )
        if arguments.envs:
            results["lxc list"] = median_seconds(
                ["lxc", "list", "--project", f"cloche-{user}", "--format", "csv"], arguments.runs
            )
        results["heaviest imports (s)"] = heaviest_imports()
    finally:
        if arguments.envs:
            subprocess.run(
                [CLOCHE, "user", "rm", user, "--purge", "--yes"],
                check=False,
                capture_output=True,
                timeout=900,
            )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
