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
from typing import Any

from cloche.model.errors import ClocheError
from cloche.runtime.instances import LxdInstances
from cloche.runtime.lxd_errors import run_operation

CHUNK_BYTES = 1024 * 1024
EXPORT_TIMEOUT_SECONDS = 3600.0


class LxdExports:
    """Backup snapshots, exports and imports of one project's instances."""

    def __init__(self, instances: LxdInstances) -> None:
        self.instances = instances
        self._client: Any = instances.lxd.client
        self.project = instances.project

    def create_snapshot(self, name: str, snapshot: str) -> None:
        """Take a (stateless) snapshot of an instance."""
        with self.instances._refusals(f"snapshot {name!r}"):
            response = self._client.api.instances[name].snapshots.post(
                json={"name": snapshot, "stateful": False}
            )
            run_operation(self._client, response, 300)

    def delete_snapshot(self, name: str, snapshot: str) -> None:
        """Delete a snapshot (no error when it is already gone)."""
        with (
            contextlib.suppress(ClocheError),
            self.instances._refusals(f"delete snapshot {snapshot!r} of {name!r}"),
        ):
            response = self._client.api.instances[name].snapshots[snapshot].delete()
            run_operation(self._client, response, 300)

    @contextlib.contextmanager
    def export(self, name: str, backup: str) -> Iterator[Iterator[bytes]]:
        """An uncompressed export of the instance alone (no snapshots), as a stream of chunks.

        LXD deletes its copy when the block ends (and by itself after a day if cloche dies).
        """
        node = self._client.api.instances[name].backups
        body = {
            "name": backup,
            "expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
            "instance_only": True,
            "optimized_storage": False,
            "compression_algorithm": "none",
        }
        with self.instances._refusals(f"export {name!r}"):
            run_operation(self._client, node.post(json=body), EXPORT_TIMEOUT_SECONDS)
        try:
            with self.instances._refusals(f"read the export of {name!r}"):
                response = node[backup].export.get(is_api=False, stream=True, timeout=None)
            try:
                yield response.iter_content(chunk_size=CHUNK_BYTES)
            finally:
                response.close()
        finally:
            with (
                contextlib.suppress(ClocheError),
                self.instances._refusals(f"delete the export of {name!r}"),
            ):
                run_operation(self._client, node[backup].delete(), 300)

    def import_backup(self, name: str, tarball: Path, pool: str) -> None:
        """Create the instance name (stopped) from an exported tarball."""
        headers = {
            "Content-Type": "application/octet-stream",
            "X-LXD-name": name,
            "X-LXD-pool": pool,
        }
        with self.instances._refusals(f"import {name!r}"), tarball.open("rb") as stream:
            response = self._client.api.instances.post(data=stream, headers=headers, timeout=None)
            run_operation(self._client, response, EXPORT_TIMEOUT_SECONDS)

    def reconfigure_import(
        self, name: str, eth0: dict[str, str], *, forget_mac: bool, new_identity: bool
    ) -> None:
        """Give an imported instance its eth0 (address); a clone also a new MAC and identity.

        new_identity makes LXD apply the image's 'copy' templates at the next start (as it does
        for a copy): an empty machine-id and the marker that makes new SSH host keys.
        """
        with self.instances._refusals(f"configure the imported {name!r}"):
            raw: dict[str, Any] = self._client.api.instances[name].get().json()["metadata"]
            config = {key: value for key, value in (raw.get("config") or {}).items()}
            if forget_mac:
                config.pop("volatile.eth0.hwaddr", None)
            if new_identity:
                config["volatile.apply_template"] = "copy"
            devices = dict(raw.get("devices") or {})
            devices["eth0"] = eth0
            body = {
                "architecture": raw.get("architecture"),
                "config": config,
                "devices": devices,
                "ephemeral": raw.get("ephemeral", False),
                "profiles": raw.get("profiles") or [],
                "description": raw.get("description", ""),
            }
            response = self._client.api.instances[name].put(json=body)
            run_operation(self._client, response, 120)
