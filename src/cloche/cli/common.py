"""What every CLI command shares: the host config, the state directory, and error display."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import typer

from cloche.model.errors import ClocheError
from cloche.model.paths import CONFIG_PATH

if TYPE_CHECKING:
    from rich.console import Console

    from cloche.model.config import ClocheConfig

STATE_DIR = Path(os.environ.get("CLOCHE_STATE_DIR", "/var/lib/cloche"))

P = ParamSpec("P")
R = TypeVar("R")


@functools.cache
def console() -> Console:
    """The terminal on stdout (rich loads on first use: --version and --help never pay)."""
    from rich.console import Console

    return Console()


@functools.cache
def error_console() -> Console:
    """The terminal on stderr."""
    from rich.console import Console

    return Console(stderr=True)


def config_path() -> Path:
    """Where the host config lives (CLOCHE_CONFIG overrides it, for tests and staging)."""
    return Path(os.environ.get("CLOCHE_CONFIG", CONFIG_PATH))


def load_host_config(path: Path | None = None) -> ClocheConfig:
    """Read and validate the host config, or return the defaults when there is none yet."""
    # pydantic and the schema load only for the commands that read the config.
    from cloche.model.config import ClocheConfig, load_config_text

    source = path or config_path()
    try:
        text = source.read_text()
    except FileNotFoundError:
        return ClocheConfig()
    return load_config_text(text, str(source))


def fail(error: ClocheError) -> typer.Exit:
    """Print a cloche error as one line on stderr and return the exit to raise."""
    from rich.markup import escape

    error_console().print(
        f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True
    )
    return typer.Exit(code=error.exit_code)


def handle_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn ClocheError into one clear line and a non-zero exit, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except ClocheError as error:
            raise fail(error) from None
        except KeyboardInterrupt:
            error_console().print("interrupted")
            sys.exit(130)

    return wrapper
