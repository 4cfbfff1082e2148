"""Reading new lines of a log: a file from a saved offset, or the journal from a saved cursor."""

from __future__ import annotations

from pathlib import Path

from cloche.host.files import read_text_or_none, write_atomically
from cloche.host.run import run


def new_file_lines(log_path: Path, offset_path: Path) -> list[str]:
    """Lines appended to log_path since the offset saved in offset_path (restarts if shorter)."""
    saved = read_text_or_none(offset_path)
    offset = int(saved) if saved and saved.strip().isdigit() else 0
    try:
        size = log_path.stat().st_size
    except FileNotFoundError:
        return []
    if size < offset:
        offset = 0  # rotated or truncated: read it from the start
    with log_path.open("rb") as stream:
        stream.seek(offset)
        data = stream.read()
    complete = data[: data.rfind(b"\n") + 1]
    if complete:
        write_atomically(offset_path, str(offset + len(complete)))
    return complete.decode(errors="replace").splitlines()


def new_journal_lines(unit: str, cursor_path: Path) -> list[str]:
    """Journal messages of a systemd unit since the cursor saved in cursor_path."""
    result = run(
        ["journalctl", "-u", unit, "-o", "cat", "--no-pager", "--cursor-file", str(cursor_path)],
        check=False,
        timeout=30,
    )
    return result.stdout.splitlines()
