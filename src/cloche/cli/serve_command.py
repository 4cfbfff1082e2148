"""'cloche serve': the daemon, the only writer, serving the API on a unix socket."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from cloche.cli.common import STATE_DIR, handle_errors, load_host_config
from cloche.model.paths import DAEMON_SOCKET


@handle_errors
def serve(
    socket: Annotated[Path, typer.Option(help="Unix socket to serve the API on.")] = Path(
        DAEMON_SOCKET
    ),
) -> None:
    """Run the cloche daemon in the foreground."""
    # Imported here so that every other command starts without loading the web stack.
    import uvicorn

    from cloche.api.app import create_app
    from cloche.api.peer import PeerCredentialsProtocol
    from cloche.core.backup_schedule import start_backup_schedule
    from cloche.core.context import open_context
    from cloche.core.reconcile import start_reconciler
    from cloche.core.snapshot_scheduler import start_snapshot_scheduler
    from cloche.core.ssh_audit import start_ssh_audit

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    context = open_context(load_host_config(), STATE_DIR)
    start_reconciler(context)
    start_backup_schedule(context)
    start_snapshot_scheduler(context)
    start_ssh_audit(context)
    context.host.services.prepare_socket_directory(socket)
    uvicorn.run(
        create_app(context),
        uds=str(socket),
        http=PeerCredentialsProtocol,
        log_level="warning",
        access_log=False,
    )
