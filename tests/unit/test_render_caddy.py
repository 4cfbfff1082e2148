"""Caddy's JSON config for published HTTP(S) routes (golden), its order, and caddy's own check."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from cloche.model.errors import Conflict, Invalid
from cloche.model.routes import HttpRoute, PublishedHttpRoute, parse_route
from cloche.render.caddy import render_caddy_config
from tests.unit.golden import GOLDEN_DIR, assert_golden_json


def _published(spec: str, address: str, env: str) -> PublishedHttpRoute:
    route = parse_route(spec)
    assert isinstance(route, HttpRoute)
    return PublishedHttpRoute(route, address, env)


MIXED = [
    _published("https://app.example.com", "10.120.0.11", "alice/front"),
    _published("https://app.example.com:8080/api", "10.120.0.10", "alice/web"),
    _published("https://app.example.com:9000/api/v2", "10.120.0.12", "alice/v2"),
    _published("https://docs.example.net:3000", "10.120.1.5", "bob/docs"),
    _published("http://plain.example.org", "10.120.1.2", "bob/api"),
    _published("http://plain.example.org:8000/static", "10.120.1.3", "bob/files"),
]

CONFIGS = {
    "mixed-internal": lambda: render_caddy_config(MIXED, tls="internal"),
    "mixed-acme": lambda: render_caddy_config(
        MIXED, tls="acme", acme_email="admin@example.com", http_port=8080, https_port=8443
    ),
    "http-only": lambda: render_caddy_config(
        [route for route in MIXED if route.route.scheme == "http"], tls="internal"
    ),
    "empty": lambda: render_caddy_config([], tls="internal"),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_caddy_config_golden(name: str) -> None:
    assert_golden_json(f"caddy/{name}.json", CONFIGS[name]())


def test_output_does_not_depend_on_input_order() -> None:
    shuffled = list(MIXED)
    random.Random(7).shuffle(shuffled)
    assert render_caddy_config(shuffled, tls="internal") == render_caddy_config(
        MIXED, tls="internal"
    )


def test_longest_path_of_a_domain_is_matched_first() -> None:
    config = render_caddy_config(MIXED, tls="internal")
    routes = config["apps"]["http"]["servers"]["cloche_https"]["routes"]
    matches = [(route["match"][0]["host"][0], route["match"][0].get("path")) for route in routes]
    assert matches == [
        ("app.example.com", ["/api/v2", "/api/v2/*"]),
        ("app.example.com", ["/api", "/api/*"]),
        ("app.example.com", None),
        ("docs.example.net", None),
    ]
    dials = [route["handle"][0]["upstreams"][0]["dial"] for route in routes]
    assert dials == ["10.120.0.12:9000", "10.120.0.10:8080", "10.120.0.11:80", "10.120.1.5:3000"]


def test_internal_tls_covers_exactly_the_https_domains() -> None:
    config = render_caddy_config(MIXED, tls="internal")
    assert config["apps"]["tls"]["automation"]["policies"] == [
        {"subjects": ["app.example.com", "docs.example.net"], "issuers": [{"module": "internal"}]}
    ]
    assert config["apps"]["pki"]["certificate_authorities"]["local"]["install_trust"] is False


def test_without_https_routes_there_is_no_tls_app_and_no_https_server() -> None:
    config = CONFIGS["http-only"]()
    assert "tls" not in config["apps"]
    assert set(config["apps"]["http"]["servers"]) == {"cloche_http"}


def test_auth_routes_are_refused_until_sign_in_exists() -> None:
    protected = _published("https://app.example.com@auth:ops", "10.120.0.10", "alice/web")
    with pytest.raises(Invalid, match="needs sign-in"):
        render_caddy_config([protected], tls="internal")


def test_the_same_domain_and_path_twice_is_a_conflict() -> None:
    twice = [
        _published("https://app.example.com/api", "10.120.0.10", "alice/web"),
        _published("https://APP.example.com/api/", "10.120.1.2", "bob/api"),
    ]
    with pytest.raises(Conflict, match="published by both alice/web and bob/api"):
        render_caddy_config(twice, tls="internal")


@pytest.mark.parametrize(
    "listen",
    [
        "127.0.0.1:2019",
        "[::1]:2019",
        "localhost:2019",
        "0.0.0.0:2019",
        ":2019",
        "unix/relative.sock",
        "unix//run/c|0666",
    ],
)
def test_the_admin_api_must_be_a_unix_socket(listen: str) -> None:
    # Loopback TCP too: any local process could reconfigure Caddy through it.
    with pytest.raises(Invalid, match="not a unix socket"):
        render_caddy_config([], tls="internal", admin_listen=listen)


def test_the_default_admin_address_is_the_private_socket() -> None:
    admin = render_caddy_config([], tls="internal")["admin"]
    assert admin == {"listen": "unix//run/cloche-caddy/admin.sock", "config": {"persist": False}}
    listen = "unix//srv/other/admin.sock"
    assert render_caddy_config([], tls="internal", admin_listen=listen)["admin"]["listen"] == listen


def test_bad_tls_mode_and_email_are_refused() -> None:
    with pytest.raises(Invalid, match="TLS mode"):
        render_caddy_config([], tls="letsencrypt")  # type: ignore[arg-type]
    with pytest.raises(Invalid, match="not an e-mail address"):
        render_caddy_config([], tls="acme", acme_email="admin at example.com")


CADDY = shutil.which("caddy")


@pytest.mark.skipif(CADDY is None, reason="caddy is not installed")
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_caddy_validates_each_golden_config(name: str, tmp_path: Path) -> None:
    config = tmp_path / "caddy.json"
    shutil.copy(GOLDEN_DIR / "caddy" / f"{name}.json", config)
    json.loads(config.read_text())
    # validate provisions the apps without binding ports; the internal CA it makes stays in tmp.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    result = subprocess.run(
        [str(CADDY), "validate", "--config", str(config)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
