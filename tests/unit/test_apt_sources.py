"""The Debian mirror read from a host's apt sources: both formats, pockets, options, others."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloche.host.apt_sources import HostAptSources, sources_files
from cloche.render.apt_sources import (
    AptSource,
    debian_mirror,
    parse_deb822,
    parse_one_line,
)

MIRROR = "http://mirror.example/debian"
SECURITY = "http://mirror.example/debian-security"

DEB822_DEFAULT = f"""\
Types: deb deb-src
# {MIRROR}-archive/20250520T000000Z
URIs: {MIRROR}
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: {SECURITY}
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

ONE_LINE_DEFAULT = f"""\
# The installer's sources.
deb {MIRROR}/ bookworm main contrib non-free-firmware
deb-src {MIRROR}/ bookworm main
deb {SECURITY} bookworm-security main
deb {MIRROR} bookworm-updates main
"""

UBUNTU = """\
Types: deb
URIs: http://ubuntu.mirror.example/ubuntu
Suites: noble noble-updates noble-backports
Components: main restricted universe multiverse

Types: deb
URIs: http://ubuntu.mirror.example/ubuntu
Suites: noble-security
Components: main restricted universe multiverse
"""


def test_deb822_stanzas_give_one_entry_per_type_uri_and_suite() -> None:
    sources = parse_deb822(DEB822_DEFAULT)
    assert [(source.kind, source.uri, source.suite) for source in sources] == [
        ("deb", MIRROR, "bookworm"),
        ("deb", MIRROR, "bookworm-updates"),
        ("deb-src", MIRROR, "bookworm"),
        ("deb-src", MIRROR, "bookworm-updates"),
        ("deb", SECURITY, "bookworm-security"),
    ]
    assert sources[0].components == ("main", "contrib")


def test_deb822_fields_continue_on_indented_lines_and_ignore_case() -> None:
    text = f"types: deb\nURIS:\n {MIRROR}\nSuites: trixie\n  trixie-updates\nComponents: main\n"
    assert [source.suite for source in parse_deb822(text)] == ["trixie", "trixie-updates"]


def test_one_line_entries_with_options_and_comments() -> None:
    text = (
        "deb [arch=amd64,arm64 signed-by=/usr/share/keyrings/x.gpg] "
        f"{MIRROR} bookworm main # the main archive\n"
        f"deb\t[ arch-=i386 ]\t{MIRROR} trixie main\n"
        f"# deb {MIRROR} sid main\n"
        f"deb [enabled=no] {MIRROR} forky main\n"
    )
    assert parse_one_line(text) == [
        AptSource("deb", MIRROR, "bookworm", ("main",), architectures=("amd64", "arm64")),
        AptSource("deb", MIRROR, "trixie", ("main",), removed_architectures=("i386",)),
    ]


@pytest.mark.parametrize(
    ("files", "mirror"),
    [
        ([("debian.sources", DEB822_DEFAULT)], MIRROR),
        ([("sources.list", ONE_LINE_DEFAULT)], MIRROR),
        # Only the security and updates pockets: not the archive debootstrap needs.
        (
            [
                (
                    "sources.list",
                    f"deb {SECURITY} bookworm-security main\n"
                    f"deb {SECURITY} bookworm/updates main\n"
                    f"deb {MIRROR} bookworm-updates main\n",
                )
            ],
            None,
        ),
        ([("ubuntu.sources", UBUNTU)], None),
        ([], None),
        # A disabled stanza, a commented-out line, a source-only line, a cdrom.
        (
            [
                (
                    "debian.sources",
                    DEB822_DEFAULT.replace("Types: deb deb-src", "Enabled: no\nTypes: deb deb-src"),
                ),
                (
                    "sources.list",
                    f"# deb {MIRROR} bookworm main\n"
                    f"deb-src {MIRROR} bookworm main\n"
                    "deb cdrom:[Debian GNU/Linux 12 _Bookworm_ - DVD]/ bookworm main\n",
                ),
            ],
            None,
        ),
        # A vendor's repository for Debian names the same suite; the /debian URI wins.
        (
            [
                ("sources.list", "deb http://vendor.example/debian/12/prod bookworm main\n"),
                ("local.list", "deb http://apt.example/internal/ bookworm main contrib\n"),
                ("zz.sources", DEB822_DEFAULT),
            ],
            MIRROR,
        ),
        # A mirror whose path is not /debian still counts when the suite is Debian's.
        (
            [("local.list", "deb http://apt.example/internal/ bookworm main\n")],
            "http://apt.example/internal",
        ),
        # Not main (a vendor's 'stable' component), and not http: skipped.
        (
            [
                (
                    "sources.list",
                    "deb http://vendor.example/linux/debian bookworm stable\n"
                    "deb mirror+file:/etc/apt/mirrors/debian.list bookworm main\n"
                    "deb file:/srv/debian bookworm main\n",
                )
            ],
            None,
        ),
        # An unknown release name is the archive when the URI says Debian.
        ([("sources.list", f"deb {MIRROR} nextone main\n")], MIRROR),
    ],
    ids=[
        "deb822",
        "one-line",
        "pockets-only",
        "ubuntu-only",
        "none",
        "disabled",
        "vendor-and-debian",
        "own-path",
        "not-main-or-http",
        "unknown-release",
    ],
)
def test_debian_mirror(files: list[tuple[str, str]], mirror: str | None) -> None:
    assert debian_mirror(files) == mirror


def test_entries_for_another_architecture_are_skipped() -> None:
    files = [
        ("arm.list", "deb [arch=arm64] http://ports.example/debian bookworm main\n"),
        ("main.list", f"deb [arch-=arm64] {MIRROR} bookworm main\n"),
    ]
    assert debian_mirror(files, "arm64") == "http://ports.example/debian"
    assert debian_mirror(files, "amd64") == MIRROR
    assert debian_mirror(files[1:], "arm64") is None
    assert debian_mirror(files[:1]) == "http://ports.example/debian"


def test_host_files_are_read_in_apt_order(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(f"deb {MIRROR} bookworm main\n")
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    for name in ("b.sources", "a.list", "c.list.save", "d.list.disabled-by-admin", "e f.list"):
        (parts / name).write_text("")
    assert [name for name, _ in sources_files(tmp_path)] == ["sources.list", "a.list", "b.sources"]
    assert HostAptSources(tmp_path).sources_files()[0] == (
        "sources.list",
        f"deb {MIRROR} bookworm main\n",
    )


def test_host_without_apt_sources_has_none(tmp_path: Path) -> None:
    assert sources_files(tmp_path) == []
