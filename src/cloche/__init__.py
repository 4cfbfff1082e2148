"""cloche: one Linux host, many isolated, persistent environments."""

__version__ = "0.1.0"
