"""The shared guard: every renderer refuses a value from a user that holds a line break or a
control character, even one that got past the model's own checks."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest

from cloche.model.errors import Invalid
from cloche.model.firewall import EnvNetwork, FirewallPolicy
from cloche.model.routes import PublishedHttpRoute, parse_route
from cloche.model.text import one_line
from cloche.render.caddy import render_caddy_config
from cloche.render.nftables import render_ruleset
from cloche.render.sshd import SshdSettings, render_sshd_dropin

# Every one of these would end the line a renderer writes and start a directive of its own.
BREAKS = ["\n", "\r", "\x00", "\x0b", "\x1b", "\x85", "\u2028", "\u2029", "\x7f"]


def _forced(record: Any, **values: Any) -> Any:
    """record with values set past its own checks: what a bug upstream would hand a renderer."""
    for name, value in values.items():
        object.__setattr__(record, name, value)
    return record


@pytest.mark.parametrize("char", BREAKS)
def test_one_line_refuses_line_breaks_and_control_characters(char: str) -> None:
    with pytest.raises(Invalid, match=r"^The domain .* holds a line break or a control character"):
        one_line(f"a{char}b", "The domain")


def test_one_line_keeps_plain_text_and_its_refusal_is_one_line() -> None:
    assert one_line("josé @ laptop", "x") == "josé @ laptop"
    with pytest.raises(Invalid) as caught:
        one_line("a\n" * 100, "x")
    assert "\n" not in str(caught.value)
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize("char", BREAKS)
def test_nftables_refuses_an_environment_name_with_a_break(char: str) -> None:
    env = _forced(EnvNetwork("alice", "web", "10.120.0.10"), env=f"web{char}x")
    policy = FirewallPolicy(
        mode="open",
        bridge="clochebr0",
        gateway="10.120.0.1",
        envs=(env,),
        tenant_tags={"alice": 100000},
    )
    with pytest.raises(Invalid, match="holds a line break"):
        render_ruleset(policy)


@pytest.mark.parametrize("field", ["domain", "path"])
@pytest.mark.parametrize("char", BREAKS)
def test_caddy_refuses_a_route_value_with_a_break(field: str, char: str) -> None:
    route = _forced(parse_route("https://app.example.test/api"), **{field: f"/x{char}y"})
    published = PublishedHttpRoute(route, "10.120.0.10", "alice/web")
    with pytest.raises(Invalid, match="holds a line break"):
        render_caddy_config([published], tls="internal")


@pytest.mark.parametrize("char", BREAKS)
def test_sshd_refuses_a_path_or_address_with_a_break(char: str) -> None:
    with pytest.raises(Invalid):
        render_sshd_dropin(SshdSettings(keys_dir=PurePosixPath(f"/etc/keys{char}Match all")))
    with pytest.raises(Invalid):
        render_sshd_dropin(SshdSettings(listen_address=f"fe80::1%lo{char}PermitRootLogin yes"))
