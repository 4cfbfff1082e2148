"""The typed LXD API and the instances over it, against a stand-in for pylxd's raw client."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cloche.model.errors import Conflict, HostFailure, NotFound
from cloche.model.host import LxdObject
from cloche.model.limits import GIB, Limits
from cloche.runtime import lxd_api
from cloche.runtime.instance_snapshots import InstanceSnapshots
from cloche.runtime.lxd import Lxd
from cloche.runtime.lxd_api import LxdApi
from cloche.runtime.lxd_errors import OperationFailed, OperationTimeout
from tests.unit.lxd_doubles import FakeClient, finished, refusal, started, sync

WEB = "/instances/web"
BUSY = 'Instance is busy running a "stop" operation'


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lxd_api, "POLL_SECONDS", 0.0)


def test_a_sync_answer_is_its_metadata_and_an_async_one_is_waited_for() -> None:
    client = FakeClient()
    client.answer("patch", WEB, sync({"done": True}))
    client.answer("post", "/instances", started("op7"))
    client.answer("get", "/operations/op7/wait", finished("Running"), finished(metadata={"a": 1}))
    api = LxdApi(client)
    assert api.project == "cloche-alice"
    assert api.send("patch", ("instances", "web"), 5, body={"config": {}}) == {"done": True}
    assert client.sent("patch", WEB) == [{"json": {"config": {}}}]
    assert api.send("post", ("instances",), 60, body={"name": "web"})["metadata"] == {"a": 1}
    assert len(client.sent("get", "/operations/op7/wait")) == 2


def test_a_failed_or_late_operation_raises() -> None:
    client = FakeClient()
    client.answer("get", "/operations/op1/wait", finished("Failure", err="Disk full"))
    with pytest.raises(OperationFailed, match="Disk full"):
        LxdApi(client).wait("op1", 5)
    client.answer("get", "/operations/op1/wait", finished("Running"))
    with pytest.raises(OperationTimeout, match="op1 still Running"):
        LxdApi(client).wait("op1", 0)


def test_send_when_free_retries_only_while_the_instance_is_busy() -> None:
    client = FakeClient()
    client.answer("delete", WEB, refusal(400, BUSY), started())
    client.answer("get", "/operations/op1/wait", finished("Failure", err=BUSY), finished())
    api = LxdApi(client)
    api.send_when_free("delete", ("instances", "web"), 30)
    assert len(client.sent("delete", WEB)) == 3
    client.answer("delete", WEB, refusal(409, "Snapshot is locked"))
    client.requests.clear()
    with pytest.raises(Exception, match="locked"):
        api.send_when_free("delete", ("instances", "web"), 30)
    assert len(client.sent("delete", WEB)) == 1


def test_send_when_free_gives_up_at_the_deadline() -> None:
    client = FakeClient()
    client.answer("delete", WEB, refusal(400, BUSY))
    with pytest.raises(Exception, match="busy"):
        LxdApi(client).send_when_free("delete", ("instances", "web"), 0)


def test_refusals_become_cloche_errors() -> None:
    api = LxdApi(FakeClient())
    with pytest.raises(NotFound, match="in project cloche-alice"), api.refusals("read 'web'"):
        raise refusal(404, "Instance not found")
    with pytest.raises(HostFailure, match="check 'lxc operation list'"), api.refusals("x"):
        raise OperationTimeout("operation op1 still Running")
    with pytest.raises(HostFailure, match="check that LXD runs"), api.refusals("x"):
        raise ConnectionResetError("socket closed")


def test_names_drop_the_project_query() -> None:
    client = FakeClient()
    client.answer("get", "/profiles", sync(["/1.0/profiles/default?project=p", "/1.0/profiles/x"]))
    assert LxdApi(client).read_names(("profiles",)) == ["default", "x"]


def instances(client: FakeClient) -> InstanceSnapshots:
    return InstanceSnapshots(LxdApi(client))


def test_find_is_none_for_a_missing_instance_and_get_names_the_project() -> None:
    client = FakeClient()
    assert instances(client).find("web") is None
    with pytest.raises(NotFound, match="no environment 'web' in project cloche-alice"):
        instances(client).get("web")


def test_delete_forces_a_stop_then_deletes_while_busy() -> None:
    client = FakeClient()
    client.answer("get", WEB, sync({"name": "web", "status": "Running"}))
    client.answer("put", f"{WEB}/state", started())
    client.answer("delete", WEB, refusal(400, BUSY), started())
    client.answer("get", "/operations/op1/wait", finished())
    assert instances(client).delete("web", timeout=5) is True
    assert client.sent("put", f"{WEB}/state") == [
        {"json": {"action": "stop", "force": True, "timeout": -1}}
    ]
    assert len(client.sent("delete", WEB)) == 2


def test_exec_reads_the_recorded_output_and_deletes_the_logs() -> None:
    client = FakeClient()
    client.answer("post", f"{WEB}/exec", started())
    output = {"1": "/1.0/instances/web/logs/exec_1.stdout", "2": "/1.0/x/exec_1.stderr"}
    client.answer("get", "/operations/op1/wait", finished(metadata={"return": 3, "output": output}))
    client.answer("get", f"{WEB}/logs/exec_1.stdout", sync(content=b"out"))
    client.answer("get", f"{WEB}/logs/exec_1.stderr", sync())
    client.answer("delete", f"{WEB}/logs/exec_1.stdout", sync())
    client.answer("delete", f"{WEB}/logs/exec_1.stderr", sync())
    result = instances(client).exec("web", ["false"], timeout=5, environment={"A": "1"})
    assert (result.exit_code, result.stdout, result.stderr) == (3, b"out", b"")
    body = client.sent("post", f"{WEB}/exec")[0]["json"]
    assert body["command"] == ["timeout", "--kill-after=5", "5", "false"]
    assert body["environment"] == {"A": "1"}
    assert body["record-output"] is True
    assert len(client.sent("delete", f"{WEB}/logs/exec_1.stderr")) == 1


def test_a_missing_command_exits_127_and_a_timeout_is_a_host_failure() -> None:
    client = FakeClient()
    client.answer("post", f"{WEB}/exec", started())
    client.answer("get", "/operations/op1/wait", finished("Failure", err="Command not found"))
    assert instances(client).exec("web", ["nope"]).exit_code == 127
    client.answer("get", "/operations/op1/wait", finished(metadata={"return": 124}))
    with pytest.raises(HostFailure, match="did not finish within 2 s"):
        instances(client).exec("web", ["sleep", "9"], timeout=2)


def test_set_limits_patches_the_keys_render_writes() -> None:
    client = FakeClient()
    root = {"type": "disk", "path": "/", "pool": "cloche"}
    raw = {"name": "web", "status": "Stopped", "config": {}, "devices": {"root": root}}
    client.answer("get", WEB, sync(raw))
    client.answer("patch", WEB, sync())
    instances(client).set_limits("web", Limits(2, 2 * GIB, 10 * GIB, 512))
    assert client.sent("patch", WEB) == [
        {
            "json": {
                "config": {"limits.cpu": "2", "limits.memory": "2GiB", "limits.processes": "512"},
                "devices": {"root": {**root, "size": "10GiB"}},
            }
        }
    ]


def test_change_devices_puts_the_whole_instance_back() -> None:
    client = FakeClient()
    raw = {
        "name": "web",
        "config": {"a": "1"},
        "devices": {"old": {"type": "proxy"}, "keep": {"type": "nic"}},
        "profiles": ["standard"],
        "expanded_devices": {"root": {}},
    }
    client.answer("get", WEB, sync(raw))
    client.answer("put", WEB, sync())
    instances(client).change_devices("web", {"new": {"type": "proxy"}}, ["old"])
    body = client.sent("put", WEB)[0]["json"]
    assert body == {
        "config": {"a": "1"},
        "devices": {"keep": {"type": "nic"}, "new": {"type": "proxy"}},
        "profiles": ["standard"],
    }


def test_snapshots_are_listed_oldest_first_and_required_by_name() -> None:
    client = FakeClient()
    listing = [
        {"name": "web/b", "created_at": "2026-01-02T00:00:00.5Z"},
        {"name": "web/a", "created_at": "2026-01-01T00:00:00.123456789Z"},
    ]
    client.answer("get", f"{WEB}/snapshots", sync(listing))
    assert [s.name for s in instances(client).list_snapshots("web")] == ["a", "b"]
    with pytest.raises(NotFound, match="list its snapshots"):
        instances(client).require_snapshot("web", "c")
    client.answer("post", f"{WEB}/snapshots", refusal(409, "Snapshot already exists"))
    with pytest.raises(Conflict, match="choose another name"):
        instances(client).snapshot("web", "a")


class FakeManager:
    """pylxd's client.profiles (or networks, storage_pools): get(name) or NotFound."""

    def __init__(self, **objects: SimpleNamespace) -> None:
        self.objects = objects

    def get(self, name: str) -> SimpleNamespace:
        if name not in self.objects:
            raise refusal(404, "not found")
        return self.objects[name]


def test_the_host_facade_reads_pools_networks_and_profiles() -> None:
    lxd = Lxd.__new__(Lxd)  # no socket: only the client's managers are used
    pool = SimpleNamespace(name="p", description=None, config={"size": "9GiB"}, driver="btrfs")
    network = SimpleNamespace(name="br", description="d", config={}, type="bridge", managed=0)
    profile = SimpleNamespace(name="x", description="", config={}, devices={"eth0": {"a": "b"}})
    lxd.client = SimpleNamespace(
        storage_pools=FakeManager(p=pool),
        networks=FakeManager(br=network),
        profiles=FakeManager(x=profile),
    )
    assert lxd.get_pool("p") == LxdObject("p", "", {"size": "9GiB"}, driver="btrfs")
    assert lxd.get_network("br") == LxdObject("br", "d", {}, kind="bridge", managed=False)
    assert lxd.get_profile("x") == LxdObject("x", devices={"eth0": {"a": "b"}})
    assert lxd.get_pool("absent") is None
