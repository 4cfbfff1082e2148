"""core.firewall against a fake table: desired policy, drift audited once, egress changes, API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloche.api.app import create_app
from cloche.core import environments, firewall, host, reconcile
from cloche.model.config import ClocheConfig, parse_config
from cloche.model.egress import normalize_egress, parse_egress
from cloche.model.errors import HostFailure, Invalid, NotFound
from cloche.model.firewall import EgressAllow
from cloche.render.nftables import render_ruleset
from tests.unit.callers import header_caller
from tests.unit.fakes import (
    GIB,
    FakeContext,
    FakeFirewall,
    TestClient,
    add_user,
    events,
    fake_context,
    new_env,
    wait_operation,
)


def _add_env(context: FakeContext, user: str, name: str, address: str | None) -> None:
    context.database.environments.add(
        user,
        name,
        image="cloche/bookworm",
        profile="standard",
        cpu=1,
        memory_bytes=GIB,
        disk_bytes=10 * GIB,
        processes=512,
        status="ready",
        address=address,
    )


@pytest.fixture
def context(tmp_path: Path) -> Iterator[FakeContext]:
    with fake_context(tmp_path) as context:
        add_user(context, "alice")
        add_user(context, "bob")
        _add_env(context, "alice", "web", "10.120.0.10")
        _add_env(context, "alice", "db", "10.120.0.11")
        _add_env(context, "bob", "api", "10.120.0.12")
        _add_env(context, "bob", "half", None)
        yield context


def fake_table(context: FakeContext) -> FakeFirewall:
    assert isinstance(context.host.firewall, FakeFirewall)
    return context.host.firewall


def test_parse_egress_accepts_the_three_forms_and_refuses_the_rest() -> None:
    assert parse_egress("open") == "open"
    assert parse_egress(" none ") == "none"
    assert parse_egress("allow:10.0.0.0/8, 10.1.0.0/16,1.1.1.1") == EgressAllow(
        ("10.0.0.0/8", "1.1.1.1/32")
    )
    assert normalize_egress("allow:10.1.0.0/16,10.0.0.0/8") == "allow:10.0.0.0/8"
    for bad, phrase in (
        ("sometimes", "unknown"),
        ("allow:", "at least one network"),
        ("allow:10.0.0.1/8", "no host bits"),
        ("allow:300.0.0.0/8", "IPv4 network"),
    ):
        with pytest.raises(Invalid, match=phrase):
            parse_egress(bad)


def test_desired_policy_holds_every_env_with_an_address_and_the_config(
    context: FakeContext,
) -> None:
    context.database.environments.update("alice", "db", egress="none")
    policy = firewall.desired_policy(context)
    assert policy.mode == "open"
    assert policy.bridge == "clochebr0" and policy.gateway == "10.120.0.1"
    assert [(env.name, env.address, env.egress) for env in policy.envs] == [
        ("alice/db", "10.120.0.11", "none"),
        ("alice/web", "10.120.0.10", "open"),
        ("bob/api", "10.120.0.12", "open"),
    ]
    context.config = parse_config({"firewall": {"mode": "protect"}, "ssh": {"port": 2222}})
    protect = firewall.desired_policy(context)
    assert protect.mode == "protect" and protect.ssh_port == 2222


def test_converge_loads_the_rendering_and_audits_only_drift(context: FakeContext) -> None:
    table = fake_table(context)
    assert firewall.converge_firewall(context, "tester") is True
    assert table.table == render_ruleset(firewall.desired_policy(context))
    assert (context.state_dir / firewall.STATE_FILE).read_text() == table.table
    assert firewall.converge_firewall(context, "tester") is False  # nothing to change
    _add_env(context, "bob", "new", "10.120.0.13")
    assert firewall.converge_firewall(context, "tester") is True  # a change, not drift
    assert events(context, "repaired firewall") == []

    table.table = None  # someone ran 'nft delete table inet cloche'
    assert firewall.converge_firewall(context, reconcile.ACTOR) is True
    assert firewall.converge_firewall(context, reconcile.ACTOR) is False
    repairs = events(context, "repaired firewall")
    assert [(event.actor, event.target, event.details) for event in repairs] == [
        (reconcile.ACTOR, "inet cloche", {"was": "missing"})
    ]


def test_environments_coming_and_going_change_only_set_elements(context: FakeContext) -> None:
    table = fake_table(context)
    firewall.converge_firewall(context, "tester")
    assert table.loads == 1 and table.changes == []
    _add_env(context, "bob", "new", "10.120.0.13")
    firewall.converge_firewall(context, "tester")
    context.database.environments.delete("alice", "web")
    firewall.converge_firewall(context, "tester")
    assert table.loads == 1  # never a whole-table replace
    assert len(table.changes) == 2
    assert 'add element inet cloche tenant_of { 10.120.0.13 comment "bob/new"' in table.changes[0]
    assert "delete element inet cloche tenant_of { 10.120.0.10 }" in table.changes[1]
    # The edited live table holds what a whole render of the policy holds, element for element.
    assert sorted((table.table or "").splitlines()) == sorted(
        render_ruleset(firewall.desired_policy(context)).splitlines()
    )
    assert firewall.converge_firewall(context, "tester") is False
    assert len(table.changes) == 2  # nothing to change: nft is not even run


def test_a_new_structure_or_a_drifted_table_replaces_the_whole_table(
    context: FakeContext,
) -> None:
    table = fake_table(context)
    firewall.converge_firewall(context, "tester")
    context.config = parse_config({"firewall": {"mode": "protect"}})
    firewall.converge_firewall(context, "tester")
    assert table.loads == 2 and table.changes == []
    table.table = (table.table or "") + "\n# added by hand"
    _add_env(context, "bob", "new", "10.120.0.13")
    firewall.converge_firewall(context, "tester")
    assert table.loads == 3 and table.changes == []
    assert table.table == render_ruleset(firewall.desired_policy(context))


def test_refused_element_changes_fall_back_to_a_whole_table(context: FakeContext) -> None:
    table = fake_table(context)
    firewall.converge_firewall(context, "tester")
    (context.state_dir / firewall.ELEMENTS).write_text("{not json")
    _add_env(context, "bob", "new", "10.120.0.13")
    firewall.converge_firewall(context, "tester")  # unreadable saved load: whole table
    assert table.loads == 2

    def refused(text: str) -> None:
        raise HostFailure("nft refused the firewall element changes: no such element.")

    table.change_elements = refused  # type: ignore[method-assign]
    context.database.environments.delete("bob", "new")
    firewall.converge_firewall(context, "tester")
    assert table.loads == 3
    assert "bob/new" not in (table.table or "")


def test_the_reconciler_pass_converges_and_never_raises(context: FakeContext) -> None:
    reconcile.reconcile_once(context)
    assert fake_table(context).loads == 1

    def broken(text: str) -> None:
        raise HostFailure("nft is broken.")

    fake_table(context).apply = broken  # type: ignore[method-assign]
    reconcile.reconcile_once(context)  # logged, not raised


def test_set_egress_stores_loads_and_audits(context: FakeContext) -> None:
    answer = firewall.set_egress(context, "carol", "alice", "web", "allow:10.1.0.0/16,10.0.0.0/8")
    assert answer.egress == "allow:10.0.0.0/8" and answer.previous == "open"
    assert firewall.egress_of(context, "alice", "web") == "allow:10.0.0.0/8"
    assert '10.120.0.10 . 10.0.0.0/8 comment "alice/web"' in (fake_table(context).table or "")
    [event] = events(context, "changed egress")
    assert (event.actor, event.target, event.outcome) == ("carol", "alice/web", "succeeded")
    # Flows the old policy let through end with the change; an unchanged policy ends nothing.
    assert fake_table(context).forgotten == ["10.120.0.10"]
    firewall.set_egress(context, "carol", "alice", "web", "allow:10.0.0.0/8")
    assert fake_table(context).forgotten == ["10.120.0.10"]


def test_a_failed_load_keeps_the_previous_egress(context: FakeContext) -> None:
    def broken(text: str) -> None:
        raise HostFailure("nft refused the firewall script.")

    fake_table(context).apply = broken  # type: ignore[method-assign]
    with pytest.raises(HostFailure):
        firewall.set_egress(context, "carol", "alice", "web", "none")
    assert firewall.egress_of(context, "alice", "web") == "open"
    assert fake_table(context).forgotten == []
    [event] = events(context, "changed egress")
    assert event.outcome == "failed"


def test_egress_of_a_missing_env_is_not_found(context: FakeContext) -> None:
    with pytest.raises(NotFound):
        firewall.set_egress(context, "carol", "alice", "nope", "none")


def test_the_egress_route_and_info(context: FakeContext) -> None:
    with TestClient(create_app(context, header_caller)) as client:
        path = "/v1/environments/alice/web/egress"
        response = client.patch(path, json={"egress": "none"}, headers={"X-Test-Admin": "c"})
        assert response.status_code == 200, response.text
        assert response.json()["egress"] == "none"
        assert client.get(path).json()["egress"] == "none"
        context.fake.add_instance("cloche-alice", "web", owner="alice")
        assert client.get("/v1/environments/alice/web").json()["egress"] == "none"
        bad = client.patch(path, json={"egress": "allow:10.0.0.300/8"})
        assert bad.status_code == 422, bad.text
        assert bad.json()["error"] == "Invalid"
        assert "10.0.0.300/8" in bad.json()["message"]


def test_the_config_has_a_firewall_mode_that_defaults_to_open() -> None:
    assert ClocheConfig().firewall.mode == "open"
    with pytest.raises(Invalid, match=r"firewall\.mode"):
        parse_config({"firewall": {"mode": "closed"}})


def test_a_new_env_is_in_its_tenants_set_before_it_starts_and_leaves_on_removal(
    tmp_path: Path,
) -> None:
    with fake_context(tmp_path) as context:
        add_user(context, "carol")
        seen: list[str] = []
        context.fake.before["start"] = lambda project, name: seen.append(
            fake_table(context).table or ""
        )
        operation = environments.request_create(context, "carol", new_env(user="carol"))
        assert wait_operation(context, operation).status == "succeeded"
        assert len(seen) == 1 and '10.120.0.10 comment "carol/web"' in seen[0]
        assert environments.environment_info(context, "carol", "web").record.egress == "open"
        operation = environments.request_remove(context, "carol", "carol", "web")
        assert wait_operation(context, operation).status == "succeeded"
        assert "carol/web" not in (fake_table(context).table or "")


def test_a_table_deleted_while_the_desired_one_changes_is_still_drift(
    context: FakeContext,
) -> None:
    table = fake_table(context)
    firewall.converge_firewall(context, "tester")
    table.table = None  # deleted by hand ...
    _add_env(context, "bob", "later", "10.120.0.14")  # ... while the environments change
    assert firewall.converge_firewall(context, reconcile.ACTOR) is True
    repairs = events(context, "repaired firewall")
    assert [event.details for event in repairs] == [{"was": "missing"}]
    assert '10.120.0.14 comment "bob/later"' in (table.table or "")
    _add_env(context, "bob", "third", "10.120.0.15")  # positive control: a change alone
    assert firewall.converge_firewall(context, reconcile.ACTOR) is True
    assert len(events(context, "repaired firewall")) == 1


def test_a_failed_load_is_kept_for_host_status_until_a_good_one(context: FakeContext) -> None:
    table = fake_table(context)
    firewall.converge_firewall(context, "tester")
    good = table.table
    effects = context.host
    assert host._check_firewall(effects, context.config, context.state_dir).startswith(
        "table inet cloche loaded"
    )
    table.refuse = "syntax error, unexpected junk"
    _add_env(context, "bob", "later", "10.120.0.14")
    with pytest.raises(HostFailure):
        firewall.converge_firewall(context, "tester")
    assert table.table == good  # the previous table stays
    with pytest.raises(HostFailure, match=r"the last firewall load failed .*syntax error"):
        host._check_firewall(effects, context.config, context.state_dir)
    table.refuse = None
    firewall.converge_firewall(context, "tester")
    assert not (context.state_dir / firewall.LOAD_ERROR).exists()
    assert "loaded" in host._check_firewall(effects, context.config, context.state_dir)
    table.table = (table.table or "") + "\n# added by hand"
    with pytest.raises(HostFailure, match="not what cloche loaded"):
        host._check_firewall(effects, context.config, context.state_dir)
