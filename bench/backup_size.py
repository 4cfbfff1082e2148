#!/usr/bin/env python3
"""Benchmark: what a restic backup adds, first and after a 1 MiB change, and its throughput.

Runs on a host set up by ./scripts/quickstart, as root:

    .venv/bin/python bench/backup_size.py

It makes a user and an environment with 64 MiB of random data, backs it up to the default
repository, changes 1 MiB, backs it up again, prints sizes and seconds as JSON, and removes the
environment and the user (its two backups stay in the repository until retention prunes them).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from functools import partial

from benchlib import CLOCHE, KEY
from benchlib import run as run_command

# This benchmark's waits are bounded at 1800 s, not the shared default.
run = partial(run_command, timeout=1800)


def backups_of(address: str) -> list[dict[str, object]]:
    """The environment's backups, oldest first."""
    listed = json.loads(run(CLOCHE, "backup", "list", address, "--json"))
    return sorted(listed, key=lambda item: str(item["time"]))


def timed_backup(address: str) -> float:
    """Seconds one 'cloche backup run' takes."""
    started = time.monotonic()
    run(CLOCHE, "backup", "run", address)
    return time.monotonic() - started


def main() -> None:
    """Measure and print the figures."""
    user = f"bkbench{uuid.uuid4().hex[:6]}"
    address = f"{user}/data"
    run(CLOCHE, "user", "add", user, "--ssh-key", str(KEY))
    try:
        run(CLOCHE, "create", address)
        run(
            CLOCHE,
            "exec",
            address,
            "--root",
            "--",
            "sh",
            "-c",
            "head -c 64M /dev/urandom > /root/data.bin && sync",
        )
        first_seconds = timed_backup(address)
        run(
            CLOCHE,
            "exec",
            address,
            "--root",
            "--",
            "sh",
            "-c",
            "dd if=/dev/urandom of=/root/data.bin bs=1M count=1 seek=10 conv=notrunc "
            "status=none && sync",
        )
        second_seconds = timed_backup(address)
        first, second = backups_of(address)[-2:]
        total = int(str(first["total_bytes"]))
        print(
            json.dumps(
                {
                    "export_bytes": total,
                    "first_backup_added_bytes": first["data_added"],
                    "first_backup_seconds": round(first_seconds, 1),
                    "second_backup_added_bytes_after_1MiB_change": second["data_added"],
                    "second_backup_seconds": round(second_seconds, 1),
                    "first_backup_throughput_MB_s": round(total / first_seconds / 1e6, 1),
                },
                indent=2,
            )
        )
    finally:
        # Its backups too: they would stay in the shared local repository otherwise.
        try:
            made = backups_of(address)
        except RuntimeError:
            made = []
        for backup in made:
            subprocess.run(
                [CLOCHE, "backup", "rm", str(backup["id"]), "--repo", "local", "--yes"],
                capture_output=True,
                check=False,
                timeout=3600,
            )
        subprocess.run(
            [CLOCHE, "user", "rm", user, "--purge", "--yes"],
            capture_output=True,
            check=False,
            timeout=600,
        )


if __name__ == "__main__":
    main()
