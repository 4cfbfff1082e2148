"""The route grammar: valid specs round-trip, invalid ones say where and why, nothing else leaks."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cloche.model.errors import Invalid
from cloche.model.routes import (
    AuthRule,
    HttpRoute,
    PortRoute,
    PublishedHttpRoute,
    Route,
    RouteError,
    parse_route,
)

VALID: list[tuple[str, Route, str | None]] = [
    # spec, parsed, canonical spec
    ("https://app.example.com", HttpRoute("https", "app.example.com"), "https://app.example.com"),
    ("http://example.org", HttpRoute("http", "example.org"), "http://example.org"),
    (
        "https://App.Example.COM:8080/api/v1@auth:devs,ops",
        HttpRoute("https", "app.example.com", 8080, "/api/v1", AuthRule(("devs", "ops"))),
        "https://app.example.com:8080/api/v1@auth:devs,ops",
    ),
    ("https://a.example.com:80/", HttpRoute("https", "a.example.com"), "https://a.example.com"),
    ("http://x.io/api/", HttpRoute("http", "x.io", path="/api"), "http://x.io/api"),
    (
        "https://a.b.c.example.com/A-b_c.d~e",
        HttpRoute("https", "a.b.c.example.com", path="/A-b_c.d~e"),
        "https://a.b.c.example.com/A-b_c.d~e",
    ),
    (
        "https://x.example.com@auth",
        HttpRoute("https", "x.example.com", auth=AuthRule()),
        "https://x.example.com@auth",
    ),
    (
        "http://x.example.com:3000@auth:g_1,g-2",
        HttpRoute("http", "x.example.com", 3000, auth=AuthRule(("g_1", "g-2"))),
        "http://x.example.com:3000@auth:g_1,g-2",
    ),
    ("https://x-1.example.com:65535", HttpRoute("https", "x-1.example.com", 65535), None),
    ("https://1.2.3.example", HttpRoute("https", "1.2.3.example"), None),
    ("https://xn--bcher-kva.example", HttpRoute("https", "xn--bcher-kva.example"), None),
    ("https://a.example.com:1", HttpRoute("https", "a.example.com", 1), None),
    ("tcp://2222:22", PortRoute("tcp", 2222, 22), None),
    ("udp://1024:53", PortRoute("udp", 1024, 53), None),
    ("tcp://65535:65535", PortRoute("tcp", 65535, 65535), None),
]


@pytest.mark.parametrize(("spec", "expected", "canonical"), VALID, ids=[v[0] for v in VALID])
def test_valid_specs_parse_and_round_trip(
    spec: str, expected: Route, canonical: str | None
) -> None:
    route = parse_route(spec)
    assert route == expected
    assert route.spec == (canonical or spec)
    assert parse_route(route.spec) == route


INVALID: list[tuple[str, int, str]] = [
    # spec, position, a phrase of the reason
    ("", 0, "starts with a scheme"),
    ("app.example.com", 0, "starts with a scheme"),
    ("ftp://example.com", 0, 'unknown scheme "ftp"'),
    ("HTTPS://example.com", 0, "unknown scheme"),
    ("https:/example.com", 0, "starts with a scheme"),
    ("https://", 8, "domain is missing"),
    ("https://:8080", 8, "domain is missing"),
    ("https://localhost", 8, "single label"),
    ("https://10.0.0.1", 8, "IP address"),
    ("https://example.123", 16, "numeric label"),
    ("https://exa_mple.com", 11, '"_" is not allowed in a domain'),
    ("https://*.example.com", 8, '"*" is not allowed in a domain'),
    ("https://ex ample.com", 10, '" " is not allowed'),
    ("https://exämple.com", 10, "not allowed in a domain"),
    ("https://a..example.com", 10, "empty label"),
    ("https://.example.com", 8, "empty label"),
    ("https://example.com.", 20, "empty label"),
    ("https://-a.example.com", 8, "starts or ends with '-'"),
    ("https://a-.example.com", 9, "starts or ends with '-'"),
    ("https://" + "a" * 64 + ".com", 8, "label is 64 characters"),
    ("https://" + ".".join(["a" * 63] * 4) + ".com", 8, "the domain is 259 characters long"),
    ("https://example.com:", 20, "ends before the environment port"),
    ("https://example.com:x", 20, 'expected the environment port, found "x"'),
    ("https://example.com:0", 20, "out of range 1-65535"),
    ("https://example.com:65536", 20, "out of range 1-65535"),
    ("https://example.com:" + "9" * 5000, 20, "out of range 1-65535"),
    ("https://example.com:080", 20, "leading zero"),
    ("https://example.com:80x", 22, 'unexpected "x"'),
    ("https://example.com:8080:9090", 24, 'unexpected ":"'),
    ("https://example.com/a//b", 22, "empty segment"),
    ("https://example.com/a/../b", 22, '".." segment'),
    ("https://example.com/./b", 20, '"." segment'),
    ("https://example.com/..", 20, '".." segment'),
    ("https://example.com/a?b=c", 21, '"?" is not allowed in a route path'),
    ("https://example.com/a%20b", 21, '"%" is not allowed'),
    ("https://example.com/a#x", 21, '"#" is not allowed'),
    ("https://example.com@", 20, "expected 'auth'"),
    ("https://example.com@admin", 20, "expected 'auth'"),
    ("https://example.com@authx", 24, 'unexpected "x"'),
    ("https://example.com@auth:", 25, "group name is empty"),
    ("https://example.com@auth:a,,b", 27, "group name is empty"),
    ("https://example.com@auth:a,", 27, "group name is empty"),
    ("https://example.com@auth:Devs", 25, '"D" is not allowed in a group name'),
    ("https://example.com@auth:a b", 26, '" " is not allowed in a group name'),
    ("https://example.com@auth:ops,ops", 29, 'group "ops" is listed twice'),
    ("https://example.com/api@auth@auth", 28, 'unexpected "@"'),
    ("https://example.com ", 19, '" " is not allowed in a domain'),
    ("tcp://", 6, "ends before the host port"),
    ("tcp://70000:22", 6, "port 70000 is out of range 1-65535"),
    ("tcp://22:22", 6, "below 1024, reserved for the host"),
    ("udp://443:443", 6, "below 1024"),
    ("tcp://2019:80", 6, "reserved for Caddy's admin API"),
    ("tcp://8443:443", 6, "reserved for LXD's API"),
    ("tcp://2222", 10, "ends too early"),
    ("tcp://2222:", 11, "ends before the environment port"),
    ("tcp://2222/22", 10, 'unexpected "/"'),
    ("tcp://2222:0", 11, "out of range"),
    ("tcp://2222:22 ", 13, 'unexpected " "'),
    ("tcp://2222:22/x", 13, 'unexpected "/"'),
    ("udp://x:1", 6, 'expected the host port, found "x"'),
]


@pytest.mark.parametrize(("spec", "position", "phrase"), INVALID, ids=[v[0][:60] for v in INVALID])
def test_invalid_specs_say_where_and_why(spec: str, position: int, phrase: str) -> None:
    with pytest.raises(RouteError) as caught:
        parse_route(spec)
    error = caught.value
    assert (error.position, phrase in error.reason) == (position, True), str(error)
    assert isinstance(error, Invalid)
    assert str(error).startswith(f"{json.dumps(spec)}: position {position}: ")
    assert str(error).endswith(".")


def test_the_message_names_the_spec_the_position_and_what_to_do() -> None:
    with pytest.raises(RouteError) as caught:
        parse_route("tcp://70000:22")
    assert str(caught.value) == (
        '"tcp://70000:22": position 6: port 70000 is out of range 1-65535; '
        "write a port from 1 to 65535."
    )


def test_a_published_route_needs_an_ipv4_address() -> None:
    route = HttpRoute("https", "app.example.com")
    assert PublishedHttpRoute(route, "10.120.0.5", "alice/web").address == "10.120.0.5"
    with pytest.raises(Invalid, match="alice/web is not an IPv4 address"):
        PublishedHttpRoute(route, "fe80::1", "alice/web")


# Text close to the grammar finds more edge cases than arbitrary text alone.
_NEAR = st.builds(
    "".join,
    st.lists(
        st.sampled_from(
            [
                "https://",
                "http://",
                "tcp://",
                "udp://",
                "a",
                "Z",
                "0",
                "9",
                "65535",
                "65536",
                "1024",
                ".",
                "-",
                ":",
                "/",
                "@",
                "auth",
                ",",
                "g",
                "..",
                "_",
                "~",
                " ",
                "é",
                "%",
                "\x00",
                "٣",
                "²",
                "İ",
            ]
        ),
        max_size=14,
    ),
)


@given(st.one_of(st.text(), _NEAR))
@example("https://example.com:" + "1" * 5000)
@example("tcp://٣٣٣٣:22")
@example("https://İ.example.com")
def test_any_text_parses_or_is_refused_with_a_position_in_range(spec: str) -> None:
    try:
        route = parse_route(spec)
    except RouteError as error:
        assert 0 <= error.position <= len(spec)
        assert error.reason
    else:
        assert parse_route(route.spec) == route


_LABEL = st.from_regex(r"\A[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_TOP = st.from_regex(r"\A[a-z](?:[a-z0-9-]{0,20}[a-z0-9])?\Z")
_DOMAINS = st.builds(
    lambda labels, top: ".".join([*labels, top]), st.lists(_LABEL, min_size=1, max_size=4), _TOP
).filter(lambda domain: len(domain) <= 253)
_SEGMENT = st.from_regex(r"\A[A-Za-z0-9._~-]{1,12}\Z").filter(lambda s: s not in (".", ".."))
_PATHS = st.lists(_SEGMENT, max_size=4).map(lambda segments: "/" + "/".join(segments))
_GROUPS = st.lists(st.from_regex(r"\A[a-z0-9_-]{1,10}\Z"), max_size=4, unique=True)
_AUTH = st.none() | _GROUPS.map(lambda groups: AuthRule(tuple(groups)))
_PORTS = st.integers(1, 65535)
_HOST_PORTS = st.integers(1024, 65535).filter(lambda port: port not in (2019, 8443))

VALID_ROUTES: st.SearchStrategy[Route] = st.one_of(
    st.builds(
        HttpRoute,
        scheme=st.sampled_from(["http", "https"]),
        domain=_DOMAINS,
        env_port=_PORTS,
        path=_PATHS,
        auth=_AUTH,
    ),
    st.builds(PortRoute, st.sampled_from(["tcp", "udp"]), _HOST_PORTS, _PORTS),
)


@given(VALID_ROUTES)
def test_every_valid_route_round_trips_through_its_spec(route: Route) -> None:
    assert parse_route(route.spec) == route
    assert parse_route(route.spec).spec == route.spec


@given(_DOMAINS)
def test_a_domain_is_kept_lowercase_whatever_case_it_was_written_in(domain: str) -> None:
    route = parse_route(f"https://{domain.upper()}")
    assert isinstance(route, HttpRoute)
    assert route.domain == domain
