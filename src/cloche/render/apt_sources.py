"""Pure: the Debian mirror a host's own apt sources use, read from the texts of those files.

Both formats apt reads: one-line entries (sources.list, sources.list.d/*.list) and deb822
stanzas (sources.list.d/*.sources). The image is bootstrapped from the same archive, so a host
behind its own mirror (or a caching proxy) needs no setting for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# Release names and their aliases: a suite among these (or a URI ending in /debian) is Debian's
# main archive, which is how an Ubuntu or third-party entry is told apart from it.
DEBIAN_SUITES = frozenset(
    {
        "hamm",
        "slink",
        "potato",
        "woody",
        "sarge",
        "etch",
        "lenny",
        "squeeze",
        "wheezy",
        "jessie",
        "stretch",
        "buster",
        "bullseye",
        "bookworm",
        "trixie",
        "forky",
        "duke",
        "sid",
        "oldoldstable",
        "oldstable",
        "stable",
        "testing",
        "unstable",
    }
)
_FALSE = frozenset({"no", "false", "without", "off", "disable"})
_DEB822_SUFFIX = ".sources"


@dataclass(frozen=True)
class AptSource:
    """One repository apt fetches from: a type (deb or deb-src), a URI, a suite, components."""

    kind: str
    uri: str
    suite: str
    components: tuple[str, ...] = ()
    # Empty: every architecture; otherwise only these (apt's Architectures / arch=).
    architectures: tuple[str, ...] = ()
    # Architectures removed from the default (apt's Architectures-Remove / arch-=).
    removed_architectures: tuple[str, ...] = ()

    def serves(self, architecture: str | None) -> bool:
        """Whether apt on a host of this (dpkg) architecture uses the entry; None: any."""
        if architecture is None:
            return True
        if self.architectures and architecture not in self.architectures:
            return False
        return architecture not in self.removed_architectures


def _enabled(value: str | None) -> bool:
    return value is None or value.strip().lower() not in _FALSE


def _source(
    kind: str, uri: str, suite: str, components: Sequence[str], options: Mapping[str, str]
) -> AptSource:
    return AptSource(
        kind=kind,
        uri=uri,
        suite=suite,
        components=tuple(components),
        architectures=tuple(options.get("architectures", "").split()),
        removed_architectures=tuple(options.get("architectures-remove", "").split()),
    )


# The one-line option names, as the deb822 field names they stand for.
_ONE_LINE_OPTIONS = {"arch": "architectures", "enabled": "enabled"}


def _one_line_options(text: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for option in text.split():
        match = re.fullmatch(r"([A-Za-z-]+?)([+-]?)=(.*)", option)
        if match is None:
            continue
        name, modifier, value = match.groups()
        field = _ONE_LINE_OPTIONS.get(name.lower())
        # arch+= only adds to the default set, so it does not narrow what the entry serves.
        if field is None or modifier == "+" or (modifier == "-" and field != "architectures"):
            continue
        key = field + ("-remove" if modifier == "-" else "")
        options[key] = value.replace(",", " ")
    return options


def parse_one_line(text: str) -> list[AptSource]:
    """The enabled entries of a one-line-style file (sources.list, *.list), in order."""
    sources = []
    for raw_line in text.splitlines():
        line = raw_line.split("#", 1)[0].strip()
        kind, _, rest = re.sub(r"\s", " ", line).partition(" ")
        if kind not in {"deb", "deb-src"}:
            continue
        rest = rest.strip()
        options: dict[str, str] = {}
        if rest.startswith("["):
            closing = rest.find("]")
            if closing < 0:
                continue
            options = _one_line_options(rest[1:closing])
            rest = rest[closing + 1 :]
        fields = rest.split()
        if len(fields) < 2 or not _enabled(options.get("enabled")):
            continue
        uri, suite, *components = fields
        sources.append(_source(kind, uri, suite, components, options))
    return sources


def _stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    name = ""
    for line in [*text.splitlines(), ""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if fields:
                stanzas.append(fields)
            fields, name = {}, ""
        elif line[0] in " \t":
            if name:
                fields[name] += "\n" + line.strip()
        elif ":" in line:
            field, _, value = line.partition(":")
            name = field.strip().lower()
            fields[name] = value.strip()
    return stanzas


def parse_deb822(text: str) -> list[AptSource]:
    """The enabled entries of a deb822-style file (*.sources), one per type, URI and suite."""
    sources = []
    for fields in _stanzas(text):
        if not _enabled(fields.get("enabled")):
            continue
        components = fields.get("components", "").split()
        for kind in fields.get("types", "").split():
            for uri in fields.get("uris", "").split():
                for suite in fields.get("suites", "").split():
                    sources.append(_source(kind, uri, suite, components, fields))
    return sources


def parse_sources_file(name: str, text: str) -> list[AptSource]:
    """The enabled entries of one file, in the format its name says (.sources: deb822)."""
    if name.endswith(_DEB822_SUFFIX):
        return parse_deb822(text)
    return parse_one_line(text)


def _is_debian_main_archive(source: AptSource, architecture: str | None) -> bool:
    # Pockets (bookworm-updates, bookworm-security, the old bookworm/updates) are not the
    # archive debootstrap bootstraps from; cdrom:, file: and mirror+file: URIs are not http.
    if source.kind != "deb" or not source.serves(architecture):
        return False
    if not re.match(r"https?://", source.uri) or "main" not in source.components:
        return False
    if "-" in source.suite or "/" in source.suite:
        return False
    return source.suite in DEBIAN_SUITES or source.uri.rstrip("/").endswith("/debian")


def debian_mirror(files: Iterable[tuple[str, str]], architecture: str | None = None) -> str | None:
    """The URL of Debian's main archive the files use, or None when they name none.

    files are (file name, text) in the order apt reads them: sources.list, then
    sources.list.d/ sorted by name. A URI ending in /debian wins over another match (a vendor's
    repository for Debian names the same suite), else the first match does.
    """
    candidates = [
        source.uri.rstrip("/")
        for name, text in files
        for source in parse_sources_file(name, text)
        if _is_debian_main_archive(source, architecture)
    ]
    for uri in candidates:
        if uri.endswith("/debian"):
            return uri
    return candidates[0] if candidates else None
