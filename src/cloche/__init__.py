"""cloche: one Linux host, many isolated, persistent environments."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["Client", "__version__"]

if TYPE_CHECKING:
    from cloche.client import Client


def __getattr__(name: str) -> object:
    # The client (httpx, pydantic) loads on first use, so `import cloche` stays cheap.
    if name == "Client":
        from cloche.client import Client

        return Client
    raise AttributeError(f"module 'cloche' has no attribute {name!r}")
