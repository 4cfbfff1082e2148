"""Pure helpers of the runtime: LXD's JSON read into cloche's types, and bodies built from it."""

from __future__ import annotations

from datetime import UTC, datetime

from cloche.model.instances import InstanceInfo, limits_config, limits_patch, sized_root
from cloche.model.limits import GIB, Limits
from cloche.runtime.lxd_records import (
    changed_devices,
    failed_units,
    instance_info,
    instance_state,
    last_line,
    last_lines,
    lxd_time,
    replacement,
    snapshot_info,
    template_is_current,
    timed_command,
)

STATE = {
    "status": "Running",
    "pid": 77,
    "processes": 12,
    "memory": {"usage": 1024},
    "network": {
        "eth0": {
            "addresses": [
                {"family": "inet6", "scope": "global", "address": "fd42::2"},
                {"family": "inet", "scope": "local", "address": "127.0.0.1"},
                {"family": "inet", "scope": "global", "address": "10.120.0.5"},
                {"family": "inet", "scope": "global", "address": "10.120.0.250"},
            ]
        }
    },
}


def test_lxd_times_keep_microseconds_and_are_utc() -> None:
    assert lxd_time("2026-11-22T20:15:28.422205755Z") == datetime(
        2026, 11, 22, 20, 15, 28, 422205, tzinfo=UTC
    )
    assert lxd_time("2026-11-22T20:15:28Z") == datetime(2026, 11, 22, 20, 15, 28, tzinfo=UTC)
    assert lxd_time("2026-11-22T21:15:28.5+01:00").hour == 20


def test_state_and_info_are_read_from_lxd_s_json() -> None:
    state = instance_state("web", STATE)
    assert (state.status, state.addresses, state.memory_bytes, state.processes, state.pid) == (
        "Running",
        ("10.120.0.5", "10.120.0.250"),
        1024,
        12,
        77,
    )
    assert instance_state("web", {}, "Stopped").addresses == ()
    assert instance_state("web", {}, "Stopped").status == "Stopped"
    info = instance_info({"name": "web", "config": {"user.cloche.role": "template", "n": 1}})
    assert info == InstanceInfo("web", "", (), {"user.cloche.role": "template", "n": "1"}, {})
    assert info.role == "template"
    assert snapshot_info({"name": "web/s1", "created_at": "2026-01-01T00:00:00Z"}).name == "s1"


def test_console_tails() -> None:
    assert last_lines("a\n\nb\nc\n  \n", 2) == "b\nc"
    assert last_line("first\n  last  \n\n") == "last"
    assert last_line(" \n") == "(empty)"
    assert failed_units("a.service loaded failed failed A\n\nb.mount loaded x\n") == (
        "a.service",
        "b.mount",
    )


def test_a_template_is_current_once_shifted_from_the_alias_image() -> None:
    shifted = {"volatile.last_state.idmap": '[{"Isuid":true}]', "volatile.base_image": "abc"}
    template = InstanceInfo("tmpl", "Stopped", (), shifted)
    assert template_is_current(template, "abc")
    assert template_is_current(template, None)
    assert not template_is_current(template, "def")
    assert not template_is_current(InstanceInfo("tmpl", "Stopped", (), {}), "abc")


def test_bodies_built_from_what_lxd_holds() -> None:
    raw = {
        "name": "web",
        "status": "Running",
        "config": {"a": "1"},
        "devices": {"old": {"type": "proxy"}},
        "stateful": False,
    }
    devices = changed_devices(raw, {"new": {"type": "nic"}}, ["old", "absent"])
    assert devices == {"new": {"type": "nic"}}
    assert raw["devices"] == {"old": {"type": "proxy"}}
    assert replacement(raw, devices=devices) == {
        "config": {"a": "1"},
        "devices": {"new": {"type": "nic"}},
        "stateful": False,
    }
    assert replacement(raw, config={"b": "2"})["config"] == {"b": "2"}
    assert timed_command(["sleep", "1"], None) == ["sleep", "1"]
    assert timed_command(["sleep", "1"], 2.5) == ["timeout", "--kill-after=5", "2.5", "sleep", "1"]


def test_the_limits_patch_carries_the_limits_config() -> None:
    limits = Limits(cpu=2, memory_bytes=2 * GIB, disk_bytes=10 * GIB, processes=512)
    root = {"type": "disk", "path": "/", "pool": "cloche", "size": "1GiB"}
    assert limits_config(limits) == {
        "limits.cpu": "2",
        "limits.memory": "2GiB",
        "limits.processes": "512",
    }
    assert limits_patch(limits, root) == {
        "config": limits_config(limits),
        "devices": {"root": sized_root(root, 10 * GIB)},
    }
    assert sized_root(root, 10 * GIB)["size"] == "10GiB"
    assert root["size"] == "1GiB"
