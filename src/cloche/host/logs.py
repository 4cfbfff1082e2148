"""Reading new lines of a log: a file from a saved offset, or the journal from a saved cursor."""

from __future__ import annotations

from pathlib import Path

from cloche.host.files import read_text_or_none, write_atomically
from cloche.host.run import run


def split_lines(text: str) -> list[str]:
    """text split at "\\n" only, without the last line's terminator."""
    # str.splitlines() also splits at \v, \f, \x1c-\x1e, \x85, \u2028 and \u2029: a hostile user
    # name that sshd logs unescaped would start a line of its own choosing.
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


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
    return split_lines(complete.decode(errors="replace"))


def new_journal_lines(unit: str, cursor_path: Path) -> list[str]:
    """Journal messages of a systemd unit since the cursor saved in cursor_path."""
    result = run(
        ["journalctl", "-u", unit, "-o", "cat", "--no-pager", "--cursor-file", str(cursor_path)],
        check=False,
        timeout=30,
        verbatim=True,
    )
    return split_lines(result.stdout)
