"""Caddy's files and identity: its home beside the state dir, its user, its admin socket's dir.

Caddy runs as its own user (caddy), so its home cannot be under the state dir (0700, root's):
it is the state dir's sibling NAME-caddy (/var/lib/cloche-caddy), 0700 and the caddy user's.
The config Caddy starts from is root's, readable by the caddy group, so only cloche writes it.
Hosts set up before this layout kept Caddy's files in STATE/caddy; they are moved once, while
Caddy is stopped, so its certificates and internal CA survive the move.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from cloche.host.accounts import ensure_system_user, user_ids
from cloche.host.files import read_text_or_none, write_atomically
from cloche.model.errors import HostFailure
from cloche.model.paths import CADDY_USER

log = logging.getLogger(__name__)

Ids = tuple[int, int]
CONFIG_MODE = 0o640
# Only the capability to bind ports 80 and 443 crosses to the caddy user.
CAPABILITY = "net_bind_service"


def caddy_dir(state_dir: Path) -> Path:
    """Caddy's home, the state dir's sibling: its data (certificates, CA) and its config."""
    return state_dir.with_name(f"{state_dir.name}-caddy")


def legacy_caddy_dir(state_dir: Path) -> Path:
    """Where Caddy's files were before Caddy ran as its own user (moved by prepare_home)."""
    return state_dir / "caddy"


def config_path(state_dir: Path) -> Path:
    """The last config cloche loaded into Caddy, which Caddy reads when it (re)starts."""
    return caddy_dir(state_dir) / "config.json"


def caddy_environment(state_dir: Path) -> dict[str, str]:
    """HOME and the XDG directories that keep all of Caddy's files under caddy_dir."""
    base = caddy_dir(state_dir)
    return {
        "HOME": str(base),
        "XDG_CONFIG_HOME": str(base / "config"),
        "XDG_DATA_HOME": str(base / "data"),
    }


def root_certificate_path(state_dir: Path) -> Path:
    """The root certificate of Caddy's internal CA (clients trust it for tls: internal)."""
    data = Path(caddy_environment(state_dir)["XDG_DATA_HOME"])
    return data / "caddy" / "pki" / "authorities" / "local" / "root.crt"


def socket_path(admin_listen: str) -> Path:
    """The admin socket's path in a unix/PATH admin address."""
    return Path(admin_listen.removeprefix("unix/"))


def caddy_ids(state_dir: Path) -> tuple[Ids, bool]:
    """The caddy user's (uid, gid), creating the system user if missing; and whether created."""
    created = ensure_system_user(CADDY_USER, caddy_dir(state_dir))
    ids = user_ids(CADDY_USER)
    if ids is None:
        raise HostFailure(
            f"The system user {CADDY_USER} is missing after useradd; create it "
            f"('useradd --system --user-group {CADDY_USER}') and run 'cloche host init' again."
        )
    return ids, created


def config_owner(ids: Ids) -> Ids:
    """cloche (root) owns the config Caddy starts from; the caddy group may only read it."""
    return os.geteuid(), ids[1]


def write_config(state_dir: Path, config: dict[str, Any], ids: Ids) -> None:
    """Write the config Caddy restarts with (sorted keys keep the file stable between loads)."""
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    write_atomically(config_path(state_dir), text, mode=CONFIG_MODE, owner=config_owner(ids))


def prepare_home(state_dir: Path, wanted_admin: dict[str, Any], ids: Ids, *, move: bool) -> None:
    """Caddy's home exists, is the caddy user's (0700), and its config keeps wanted_admin.

    move: Caddy is stopped, so files from the legacy layout may be moved in.
    """
    base = caddy_dir(state_dir)
    base.mkdir(parents=True, exist_ok=True)
    if move:
        _move_legacy_files(state_dir, ids)
    os.chown(base, *ids)
    os.chmod(base, 0o700)  # the internal CA's keys and the certificates' keys live here
    text = read_text_or_none(config_path(state_dir))
    try:
        saved = json.loads(text) if text is not None else None
    except ValueError:
        saved = None
    if not isinstance(saved, dict):
        saved = {}
    wanted = {**saved, "admin": wanted_admin}
    # Keep the saved routes; only an admin block that would lose cloche is replaced.
    if text is None or saved != wanted:
        write_config(state_dir, wanted, ids)
    else:
        os.chown(config_path(state_dir), *config_owner(ids))
        os.chmod(config_path(state_dir), CONFIG_MODE)


def _move_legacy_files(state_dir: Path, ids: Ids) -> None:
    old, new = legacy_caddy_dir(state_dir), caddy_dir(state_dir)
    if not old.is_dir():
        return
    kept = []
    for entry in sorted(old.iterdir()):
        if (new / entry.name).exists():
            kept.append(entry.name)  # never overwrite what the new home already holds
            continue
        shutil.move(str(entry), str(new / entry.name))
    if kept:
        log.warning("left %s in %s: %s already has them", ", ".join(kept), old, new)
    else:
        old.rmdir()
    # Caddy wrote these as root; as the caddy user it must keep renewing them.
    for directory, names, files in os.walk(new):
        for name in [*names, *files]:
            os.chown(os.path.join(directory, name), *ids, follow_symlinks=False)


def prepare_socket_directory(admin_listen: str, ids: Ids) -> None:
    """Without systemd: the admin socket's directory is the caddy user's, 0700, stale socket gone.

    Called only while no Caddy listens on it. Root passes any directory mode, so the daemon
    still reaches the socket; no other account does.
    """
    path = socket_path(admin_listen)
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    others = [entry.name for entry in directory.iterdir() if entry.name != path.name]
    if others or directory == Path("/run") or directory.is_symlink():
        # Its owner and mode change: it must be the socket's own directory.
        raise HostFailure(
            f"{directory} holds more than Caddy's admin socket; give Caddy a directory of its "
            "own, such as /run/cloche-caddy."
        )
    os.chown(directory, *ids)
    os.chmod(directory, 0o700)
    path.unlink(missing_ok=True)


def as_caddy_user(argv: list[str], ids: Ids) -> list[str]:
    """argv run as the caddy user with CAP_NET_BIND_SERVICE only (what the systemd unit does)."""
    uid, gid = ids
    capability = f"-all,+{CAPABILITY}"
    return [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={gid}",
        "--clear-groups",
        f"--inh-caps={capability}",
        f"--ambient-caps={capability}",
        f"--bounding-set={capability}",
        "--no-new-privs",
        "--",
        *argv,
    ]


def process_uid(pid: int) -> int | None:
    """The real uid a live process runs as, or None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None
