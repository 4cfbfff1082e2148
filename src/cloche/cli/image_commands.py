"""'cloche image': build the offline base image and list LXD's images."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from cloche.cli.common import STATE_DIR, console, handle_errors, load_host_config

image_app = typer.Typer(
    help="Build the Debian base image environments start from, and list LXD's images.",
    no_args_is_help=True,
)


def _split_packages(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _format_size(size_bytes: int) -> str:
    return f"{size_bytes / 1024**2:.0f} MiB"


@image_app.command("build")
@handle_errors
def build(
    release: Annotated[
        str | None,
        typer.Option(help="Debian release to bootstrap (default: image.release of the config)."),
    ] = None,
    packages: Annotated[
        str,
        typer.Option(help="Extra Debian packages, comma-separated, added to image.packages."),
    ] = "",
) -> None:
    """Build the base image with debootstrap and import it into LXD; a no-op when up to date."""
    from rich.markup import escape

    config = load_host_config()
    started = time.monotonic()
    with console().status("checking the image cache") as status:

        def progress(message: str) -> None:
            console().print(
                f"[dim]{time.monotonic() - started:6.1f}s[/] {escape(message)}",
                highlight=False,
                soft_wrap=True,
            )
            status.update(message)

        from cloche.core import images
        from cloche.core.context import image_ports

        result = images.build_image(
            config,
            image_ports(config, STATE_DIR),
            release=release,
            extra_packages=_split_packages(packages),
            progress=progress,
        )
    if result.built:
        how = "built"
    elif result.imported:
        how = "cache reused, imported"
    else:
        how = "already up to date, cache reused"
    console().print(
        f"[bold green]{result.alias}[/] fingerprint {result.fingerprint[:12]} "
        f"key {result.cache_key}: {how} in {result.seconds:.1f} s",
        highlight=False,
        soft_wrap=True,
    )


@image_app.command("list")
@handle_errors
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the images LXD holds, with their aliases and cloche cache keys."""
    from cloche.core import images
    from cloche.core.context import image_ports

    found = images.list_images(image_ports(load_host_config(), STATE_DIR))
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "aliases": list(image.aliases),
                        "fingerprint": image.fingerprint,
                        "size_bytes": image.size_bytes,
                        "created_at": image.created_at,
                        "uploaded_at": image.uploaded_at,
                        "architecture": image.architecture,
                        "properties": image.properties,
                    }
                    for image in found
                ],
                indent=2,
            )
        )
        return
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE, pad_edge=False)
    for column in ("alias", "fingerprint", "size", "created", "cloche key"):
        table.add_column(column, no_wrap=True)
    for image in found:
        table.add_row(
            ", ".join(image.aliases) or "-",
            image.short_fingerprint,
            _format_size(image.size_bytes),
            image.created_at[:16].replace("T", " "),
            image.cache_key or "-",
        )
    if not found:
        console().print("No images yet; run 'cloche image build'.")
        return
    console().print(table)
