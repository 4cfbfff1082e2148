"""LXD exports and imports for backups: a backup's snapshot, the export stream, the import.

Uses LXD's API (not the lxc client): POST /1.0/instances/NAME/backups with
compression_algorithm none, then GET .../backups/B/export streams the tarball, so it goes from
LXD into restic without a copy on disk; an import is POST /1.0/instances with the tarball.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cloche.model.errors import ClocheError
from cloche.runtime.instances import LxdInstances
from cloche.runtime.lxd_records import replacement

EXPORT_TIMEOUT_SECONDS = 3600.0
_CLEANUP_SECONDS = 300
_RECONFIGURE_SECONDS = 120


class LxdExports:
    """Backup snapshots, exports and imports of one project's instances."""

    def __init__(self, instances: LxdInstances) -> None:
        self.instances = instances
        self.api = instances.api
        self.project = instances.project

    @classmethod
    def for_project(cls, socket_path: str, project: str) -> LxdExports:
        """The exports of project on the LXD behind socket_path."""
        return cls(LxdInstances.for_project(socket_path, project))

    def create_snapshot(self, name: str, snapshot: str) -> None:
        """Take a (stateless) snapshot of an instance."""
        self.instances.snapshot(name, snapshot)

    def delete_snapshot(self, name: str, snapshot: str) -> None:
        """Delete a snapshot (no error when it is already gone)."""
        with contextlib.suppress(ClocheError):
            self.instances.delete_snapshot(name, snapshot, timeout=_CLEANUP_SECONDS)

    @contextlib.contextmanager
    def export(self, name: str, backup: str) -> Iterator[Iterator[bytes]]:
        """An uncompressed export of the instance alone (no snapshots), as a stream of chunks.

        LXD deletes its copy when the block ends (and by itself after a day if cloche dies).
        """
        backups = ("instances", name, "backups")
        body = {
            "name": backup,
            "expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
            "instance_only": True,
            "optimized_storage": False,
            "compression_algorithm": "none",
        }
        with self.api.refusals(f"export {name!r}"):
            self.api.send("post", backups, EXPORT_TIMEOUT_SECONDS, body=body)
        try:
            with contextlib.ExitStack() as stack:
                # Only opening the stream is LXD's doing; what the caller does with it is not.
                with self.api.refusals(f"read the export of {name!r}"):
                    chunks = stack.enter_context(self.api.stream((*backups, backup, "export")))
                yield chunks
        finally:
            with (
                contextlib.suppress(ClocheError),
                self.api.refusals(f"delete the export of {name!r}"),
            ):
                self.api.send("delete", (*backups, backup), _CLEANUP_SECONDS)

    def import_backup(self, name: str, tarball: Path, pool: str) -> None:
        """Create the instance name (stopped) from an exported tarball."""
        headers = {
            "Content-Type": "application/octet-stream",
            "X-LXD-name": name,
            "X-LXD-pool": pool,
        }
        with self.api.refusals(f"import {name!r}"), tarball.open("rb") as stream:
            self.api.send(
                "post", ("instances",), EXPORT_TIMEOUT_SECONDS, data=stream, headers=headers
            )

    def reconfigure_import(
        self, name: str, eth0: dict[str, str], *, forget_mac: bool, new_identity: bool
    ) -> None:
        """Give an imported instance its eth0 (address); a clone also a new MAC and identity.

        new_identity makes LXD apply the image's 'copy' templates at the next start (as it does
        for a copy): an empty machine-id and the marker that makes new SSH host keys.
        """
        with self.api.refusals(f"configure the imported {name!r}"):
            raw = self.api.read(("instances", name))
            config = {key: str(value) for key, value in (raw.get("config") or {}).items()}
            if forget_mac:
                config.pop("volatile.eth0.hwaddr", None)
            if new_identity:
                config["volatile.apply_template"] = "copy"
            devices = {**(raw.get("devices") or {}), "eth0": eth0}
            body = replacement(raw, config=config, devices=devices)
            self.api.send("put", ("instances", name), _RECONFIGURE_SECONDS, body=body)
