"""core.routes against fakes: publish/unpublish tcp, udp and http(s), conflicts, drift, the API."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloche.api.app import create_app
from cloche.core import environments, new_environment, reconcile, routes
from cloche.model.config import ClocheConfig, parse_config
from cloche.model.errors import Conflict, HostFailure, Invalid, NotFound
from cloche.model.routes import PortRoute, RouteError
from cloche.render.instance import project_name
from cloche.render.lxd import static_nic
from cloche.render.proxy_devices import DevicePlan, plan_devices, proxy_device
from tests.unit.callers import header_caller
from tests.unit.fakes import (
    FakeContext,
    FakeFirewall,
    FakeProxy,
    TestClient,
    add_user,
    events,
    fake_context,
    new_env,
    wait_operation,
)

PROTECT = parse_config({"firewall": {"mode": "protect"}, "proxy": {"tls": "internal"}})


def _create(context: FakeContext, user: str, name: str) -> None:
    operation = environments.request_create(context, user, new_env(name, user=user))
    assert wait_operation(context, operation).status == "succeeded"


@pytest.fixture
def context(tmp_path: Path) -> Iterator[FakeContext]:
    with fake_context(tmp_path, PROTECT) as context:
        add_user(context, "alice")
        add_user(context, "bob")
        _create(context, "alice", "web")
        _create(context, "alice", "db")
        _create(context, "bob", "api")
        yield context


def proxy(context: FakeContext) -> FakeProxy:
    assert isinstance(context.host.proxy, FakeProxy)
    return context.host.proxy


def table(context: FakeContext) -> str:
    assert (
        isinstance(context.host.firewall, FakeFirewall) and context.host.firewall.table is not None
    )
    return context.host.firewall.table


def devices(context: FakeContext, user: str, name: str) -> dict[str, dict[str, str]]:
    return context.fake.instances[project_name(user)][name].info.devices


def caddy_routes(context: FakeContext) -> list[dict[str, Any]]:
    config = proxy(context).config or {}
    servers = config.get("apps", {}).get("http", {}).get("servers", {})
    return [route for server in servers.values() for route in server["routes"]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# The pure device planner -----------------------------------------------------------------------


def test_plan_adds_missing_replaces_changed_and_removes_only_clochess_devices() -> None:
    ssh = PortRoute("tcp", 2222, 22)
    dns = PortRoute("udp", 5353, 53)
    current = {
        "root": {"type": "disk", "path": "/"},
        "cloche-tcp-2222": {**proxy_device(ssh), "connect": "tcp:127.0.0.1:2200"},
        "cloche-tcp-9999": proxy_device(PortRoute("tcp", 9999, 80)),
        "mine": {"type": "proxy", "listen": "tcp:0.0.0.0:7000", "connect": "tcp:127.0.0.1:7"},
    }
    plan = plan_devices(current, [ssh, dns])
    assert plan == DevicePlan(
        add={"cloche-tcp-2222": proxy_device(ssh), "cloche-udp-5353": proxy_device(dns)},
        remove=("cloche-tcp-9999",),
    )
    assert proxy_device(dns) == {
        "type": "proxy",
        "listen": "udp:0.0.0.0:5353",
        "connect": "udp:127.0.0.1:53",
    }
    converged = {**current, **plan.add}
    for name in plan.remove:
        del converged[name]
    assert plan_devices(converged, [ssh, dns]).empty


# Publishing -------------------------------------------------------------------------------------


def test_publish_tcp_adds_a_proxy_device_and_opens_the_port(context: FakeContext) -> None:
    port = free_port()
    answer = routes.publish(context, "alice", "alice", "web", f"tcp://{port}:22")
    assert answer.changed is True
    assert isinstance(answer.route, routes.PortRouteView)
    assert answer.route.device == f"cloche-tcp-{port}"
    assert devices(context, "alice", "web")[f"cloche-tcp-{port}"] == {
        "type": "proxy",
        "listen": f"tcp:0.0.0.0:{port}",
        "connect": "tcp:127.0.0.1:22",
    }
    assert f"tcp dport {{ {port} }} accept" in table(context)
    assert [event.target for event in events(context, "published route")] == ["alice/web"]
    assert routes.list_routes(context, "alice", "web")[0].record.spec == f"tcp://{port}:22"
    assert environments.environment_info(context, "alice", "web").routes == (f"tcp://{port}:22",)
    assert environments.environment_info(context, "alice", "db").routes == ()


def test_publish_udp_opens_the_udp_port(context: FakeContext) -> None:
    port = free_port()
    routes.publish(context, "bob", "bob", "api", f"udp://{port}:53")
    assert f"cloche-udp-{port}" in devices(context, "bob", "api")
    assert f"udp dport {{ {port} }} accept" in table(context)


def test_publish_https_loads_one_caddy_route_to_the_envs_address(context: FakeContext) -> None:
    answer = routes.publish(context, "alice", "alice", "web", "https://App.Test:8080/api")
    address = context.database.environments.get("alice", "web").address
    assert answer.route.public == "https://app.test/api"
    assert answer.route.target == f"{address}:8080"
    [route] = caddy_routes(context)
    assert route["match"] == [{"host": ["app.test"], "path": ["/api", "/api/*"]}]
    assert route["handle"][0]["upstreams"] == [{"dial": f"{address}:8080"}]
    config = proxy(context).config or {}
    assert config["apps"]["tls"]["automation"]["policies"][0]["issuers"] == [{"module": "internal"}]


def test_publishing_the_same_route_again_changes_nothing(context: FakeContext) -> None:
    routes.publish(context, "alice", "alice", "web", "https://app.test")
    loads = proxy(context).loads
    again = routes.publish(context, "alice", "alice", "web", "https://APP.test/")
    assert again.changed is False and proxy(context).loads == loads
    assert len(routes.list_routes(context)) == 1


def test_an_endpoint_belongs_to_one_environment(context: FakeContext) -> None:
    port = free_port()
    routes.publish(context, "alice", "alice", "web", f"tcp://{port}:22")
    with pytest.raises(Conflict, match="alice/web"):
        routes.publish(context, "alice", "alice", "db", f"tcp://{port}:80")
    routes.publish(context, "alice", "alice", "web", "https://app.test")
    # Another tenant learns that the name is taken, not whose environment holds it.
    with pytest.raises(Conflict, match="another user") as refused:
        routes.publish(context, "bob", "bob", "api", "https://app.test:3000")
    assert "alice" not in str(refused.value)
    assert len(routes.list_routes(context)) == 2


def test_a_host_port_a_program_listens_on_is_a_conflict(context: FakeContext) -> None:
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(Conflict, match=f"Host port {port}/tcp is already in use"):
            routes.publish(context, "alice", "alice", "web", f"tcp://{port}:22")
    assert routes.list_routes(context) == []
    assert not any(name.startswith("cloche-") for name in devices(context, "alice", "web"))


def test_auth_routes_are_refused_until_oidc_exists(context: FakeContext) -> None:
    with pytest.raises(Invalid, match="needs OIDC, not configured yet"):
        routes.publish(context, "alice", "alice", "web", "https://app.test@auth:admins")
    assert routes.list_routes(context) == [] and proxy(context).loads == 0
    [event] = events(context, "published route")
    assert event.outcome == "failed"


def test_a_malformed_spec_names_the_position(context: FakeContext) -> None:
    with pytest.raises(RouteError, match="position 6"):
        routes.publish(context, "alice", "alice", "web", "tcp://22x:80")


def test_publishing_on_an_unknown_environment_is_not_found(context: FakeContext) -> None:
    with pytest.raises(NotFound):
        routes.publish(context, "alice", "alice", "nope", "https://app.test")


def test_caddy_refusing_the_config_leaves_no_route_behind(context: FakeContext) -> None:
    routes.publish(context, "alice", "alice", "web", "https://one.test")
    before = proxy(context).config
    proxy(context).refuse = "loading new config: bad certificate"
    with pytest.raises(HostFailure, match="Caddy refused"):
        routes.publish(context, "alice", "alice", "web", "https://two.test")
    assert [route.record.spec for route in routes.list_routes(context)] == ["https://one.test"]
    assert proxy(context).config == before


def test_unpublish_removes_the_device_rule_and_caddy_route(context: FakeContext) -> None:
    port = free_port()
    routes.publish(context, "alice", "alice", "web", f"tcp://{port}:22")
    routes.publish(context, "alice", "alice", "web", "http://app.test")
    routes.unpublish(context, "alice", "alice", "web", f"tcp://{port}:22")
    assert f"cloche-tcp-{port}" not in devices(context, "alice", "web")
    assert str(port) not in table(context)
    routes.unpublish(context, "alice", "alice", "web", "http://APP.test/")
    assert caddy_routes(context) == []
    with pytest.raises(NotFound, match="is not published by alice/web"):
        routes.unpublish(context, "alice", "alice", "web", "http://app.test")
    assert [event.outcome for event in events(context, "unpublished route")] == [
        "succeeded",
        "succeeded",
        "failed",
    ]


def test_removing_an_environment_removes_its_routes(context: FakeContext) -> None:
    port = free_port()
    routes.publish(context, "alice", "alice", "web", f"tcp://{port}:22")
    routes.publish(context, "alice", "alice", "web", "https://app.test")
    routes.publish(context, "alice", "alice", "db", "https://db.test")
    operation = environments.request_remove(context, "alice", "alice", "web")
    assert wait_operation(context, operation).status == "succeeded"
    assert [route.record.spec for route in routes.list_routes(context)] == ["https://db.test"]
    assert [route["match"][0]["host"] for route in caddy_routes(context)] == [["db.test"]]
    assert str(port) not in table(context)


def test_a_copied_instance_loses_the_originals_devices_before_it_starts(
    context: FakeContext,
) -> None:
    port = free_port()
    routes.publish(context, "alice", "alice", "web", f"tcp://{port}:22")
    copied = devices(context, "alice", "web")[f"cloche-tcp-{port}"]
    context.fake.instances[project_name("alice")]["db"].info.devices[f"cloche-tcp-{port}"] = copied
    new_environment.start_new_environment(context, "alice", "db", lambda message: None)
    assert f"cloche-tcp-{port}" not in devices(context, "alice", "db")
    assert f"cloche-tcp-{port}" in devices(context, "alice", "web")


# The reconciler ---------------------------------------------------------------------------------


def test_reconciler_restores_a_removed_device_and_audits_it(context: FakeContext) -> None:
    port = free_port()
    routes.publish(context, "alice", "alice", "web", f"tcp://{port}:22")
    del devices(context, "alice", "web")[f"cloche-tcp-{port}"]
    devices(context, "bob", "api")["cloche-tcp-1"] = {"type": "proxy"}
    findings = routes.reconcile_routes(context, reconcile.ACTOR)
    assert len(findings) == 2
    assert f"cloche-tcp-{port}" in devices(context, "alice", "web")
    assert "cloche-tcp-1" not in devices(context, "bob", "api")
    repaired = events(context, "repaired devices")
    assert {event.target for event in repaired} == {"alice/web", "bob/api"}
    assert routes.reconcile_routes(context, reconcile.ACTOR) == []


def test_reconciler_reloads_caddy_after_a_hand_edit_and_audits_it(context: FakeContext) -> None:
    routes.publish(context, "alice", "alice", "web", "https://app.test")
    wanted = proxy(context).config
    proxy(context).config = {"admin": {"listen": "127.0.0.1:2019"}}
    assert reconcile.reconcile_once(context) == ["repaired Caddy's config (it had drifted)"]
    assert proxy(context).config == wanted
    [event] = events(context, "repaired proxy config")
    assert event.details == {"was": "changed by hand"}
    assert reconcile.reconcile_once(context) == []
    proxy(context).config = None  # Caddy not answering: loaded again (started by the host side)
    assert reconcile.reconcile_once(context) == ["repaired Caddy's config (it had drifted)"]
    assert events(context, "repaired proxy config")[-1].details == {"was": "not running"}


def test_first_load_of_a_new_config_is_not_drift(tmp_path: Path) -> None:
    with fake_context(tmp_path, ClocheConfig()) as context:
        assert routes.converge_proxy(context, "cloche") == "loaded"
        assert routes.converge_proxy(context, "cloche") == "unchanged"
        assert events(context, "repaired proxy config") == []


# The API ----------------------------------------------------------------------------------------


def test_api_publishes_lists_and_unpublishes(context: FakeContext) -> None:
    port = free_port()
    with TestClient(create_app(context, header_caller)) as client:
        created = client.post(
            "/v1/environments/alice/web/routes",
            json={"spec": f"tcp://{port}:22"},
            headers={"X-Test-Admin": "alice"},
        )
        assert created.status_code == 201, created.text
        assert client.get("/v1/routes").json()[0]["spec"] == f"tcp://{port}:22"
        assert client.get("/v1/routes", params={"user": "bob"}).json() == []
        assert len(client.get("/v1/environments/alice/web/routes").json()) == 1
        bad = client.post("/v1/environments/alice/web/routes", json={"spec": "ftp://x"})
        assert bad.status_code == 422 and "position 0" in bad.json()["message"]
        taken = client.post("/v1/environments/alice/db/routes", json={"spec": f"tcp://{port}:1"})
        assert taken.status_code == 409
        gone = client.delete(
            "/v1/environments/alice/web/routes", params={"spec": f"tcp://{port}:22"}
        )
        assert gone.status_code == 200 and gone.json()["spec"] == f"tcp://{port}:22"
        assert client.get("/v1/routes").json() == []


def test_explicit_action_routes_leave_room_for_routes_and_snapshots(context: FakeContext) -> None:
    with TestClient(create_app(context, header_caller)) as client:
        stopped = client.post("/v1/environments/alice/web/stop")
        assert stopped.status_code == 202
        assert wait_operation(context, stopped.json()["operation"]).status == "succeeded"
        taken = client.post("/v1/environments/alice/web/snapshots", json={})
        assert taken.status_code == 201, taken.text
        assert client.post("/v1/environments/alice/web/explode").status_code == 404


def test_eth0_gets_the_assigned_address_and_anti_spoofing_filters_back(
    context: FakeContext,
) -> None:
    env = context.database.environments.get("alice", "web")
    instance = context.fake.instances[project_name("alice")]["web"]
    assert instance.info.devices["eth0"]["security.ipv4_filtering"] == "true"  # from create
    # An environment made before the filters (or changed by hand) has a plain NIC.
    plain = {"type": "nic", "network": "clochebr0", "name": "eth0", "ipv4.address": "10.1.2.3"}
    instance.info = dataclasses.replace(
        instance.info, devices={**instance.info.devices, "eth0": plain}
    )
    reconcile.reconcile_once(context)
    nic = context.fake.instances[project_name("alice")]["web"].info.devices["eth0"]
    assert nic == static_nic(context.config.network.bridge, env.address or "")
    assert nic["security.mac_filtering"] == nic["security.ipv6_filtering"] == "true"
    repaired = events(context, "repaired devices")
    assert repaired[-1].details["added"] == ["eth0"]
    reconcile.reconcile_once(context)
    assert len(events(context, "repaired devices")) == len(repaired)  # converged: no new event
