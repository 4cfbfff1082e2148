"""Whether a jump account's authorized_keys grants less than before (then its sessions end)."""

from __future__ import annotations

import pytest

from cloche.model.jump_permissions import ANYWHERE, grants, key_grants, permissions_shrank
from cloche.render.sshd import render_authorized_keys

ED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJBf3/mPNdn8TRj7T3U+njTPV9g4GRslrt3p9crtBo7n a@laptop"
OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO64H3AA3U3iLpf88pxqtaC+BCBFI8RTDGc/QY3wsuld a@phone"
WEB, DB = "10.120.0.5:22", "10.120.0.6:22"


def test_rendered_file_reads_back_as_its_keys_and_forwards() -> None:
    text = render_authorized_keys([ED, OTHER], [WEB, DB])
    assert grants(text) == {
        " ".join(ED.split()[:2]): frozenset({WEB, DB}),
        " ".join(OTHER.split()[:2]): frozenset({WEB, DB}),
    }
    # No environment: the keys may log in and forward nowhere.
    assert grants(render_authorized_keys([ED], [])) == {" ".join(ED.split()[:2]): frozenset()}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # A key removed.
        (render_authorized_keys([ED, OTHER], [WEB]), render_authorized_keys([OTHER], [WEB])),
        # An environment removed (its address may go to another tenant next).
        (render_authorized_keys([ED], [WEB, DB]), render_authorized_keys([ED], [WEB])),
        # The last environment removed.
        (render_authorized_keys([ED], [WEB]), render_authorized_keys([ED], [])),
        # The user removed (the file is gone).
        (render_authorized_keys([ED], [WEB]), None),
        # A forward moved to another address.
        (render_authorized_keys([ED], [WEB]), render_authorized_keys([ED], [DB])),
    ],
)
def test_less_granted_is_a_shrink(old: str, new: str | None) -> None:
    assert permissions_shrank(old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # Nothing changed.
        (render_authorized_keys([ED], [WEB]), render_authorized_keys([ED], [WEB])),
        # A key added, an environment added.
        (render_authorized_keys([ED], [WEB]), render_authorized_keys([ED, OTHER], [WEB, DB])),
        # Only the comment of a key changed.
        (render_authorized_keys([ED], [WEB]), render_authorized_keys([ED + "-2"], [WEB])),
        # No file before (a new account): nothing could be open.
        (None, render_authorized_keys([ED], [WEB])),
    ],
)
def test_more_or_equal_is_no_shrink(old: str | None, new: str) -> None:
    assert not permissions_shrank(old, new)


def test_hand_edited_lines_count_conservatively() -> None:
    # An unrestricted line may forward anywhere sshd's backstop allows.
    assert key_grants(ED) == (" ".join(ED.split()[:2]), frozenset({ANYWHERE}))
    assert key_grants(f"no-port-forwarding {ED}") == (" ".join(ED.split()[:2]), frozenset())
    assert permissions_shrank(ED, render_authorized_keys([ED], [WEB]))
    # A line that cannot be read, once gone, is a shrink; kept, it is not.
    garbage = 'permitopen="10.0.0.1:22 ssh-ed25519 AAAA'
    assert permissions_shrank(garbage, "")
    assert not permissions_shrank(garbage, garbage)
    # Comments and blank lines grant nothing.
    assert grants("# a comment\n\n") == {}
