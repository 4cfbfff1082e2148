"""The new-environment pipeline: reserve, make (however it is born), start; nothing half-made."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloche.core.new_environment import MakeInstance, Newborn, Progress, build, reserve
from cloche.model.errors import Conflict, HostFailure, NotFound, QuotaExceeded
from cloche.model.limits import Limits
from cloche.render.image import image_alias
from cloche.render.instance import instance_request
from cloche.render.lxd import static_nic
from tests.unit.fakes import GIB, FakeContext, add_user, fake_context

PROJECT = "cloche-alice"
LIMITS = Limits(cpu=1, memory_bytes=GIB, disk_bytes=10 * GIB, processes=2000)


@pytest.fixture
def context(tmp_path: Path) -> Iterator[FakeContext]:
    with fake_context(tmp_path) as context:
        add_user(context, "alice", max_envs=2, cpu=4, memory_bytes=8 * GIB, disk_bytes=50 * GIB)
        yield context


def newborn(context: FakeContext, name: str = "born", limits: Limits = LIMITS) -> Newborn:
    return Newborn("alice", name, image_alias(context.config.image.release), "standard", limits)


def make_plain(context: FakeContext, name: str) -> MakeInstance:
    def make(address: str, progress: Progress) -> None:
        request = instance_request(
            name,
            profile="standard",
            limits=LIMITS,
            user="alice",
            pool=context.config.storage.pool,
            image_alias=image_alias(context.config.image.release),
        )
        request["devices"]["eth0"] = static_nic(context.config.network.bridge, address)
        context.user_instances("alice").create(request)

    return make


def test_a_birth_that_fails_after_making_the_instance_leaves_nothing(
    context: FakeContext,
) -> None:
    born = newborn(context)
    address = reserve(context, born)
    assert context.database.environments.get("alice", "born").status == "creating"
    context.fake.fail_boot = True
    messages: list[str] = []
    with pytest.raises(HostFailure, match="Last console lines"):
        build(context, born, address, make_plain(context, "born"), messages.append)
    assert "born" not in context.fake.instance_names(PROJECT)
    with pytest.raises(NotFound):
        context.database.environments.get("alice", "born")
    assert messages[-1] == "cleaning up"


def test_a_birth_whose_make_step_raises_forgets_the_record(context: FakeContext) -> None:
    born = newborn(context)
    address = reserve(context, born)

    def make(address: str, progress: object) -> None:
        raise Conflict("the import was refused")

    with pytest.raises(Conflict, match="import was refused"):
        build(context, born, address, make, lambda message: None)
    with pytest.raises(NotFound):
        context.database.environments.get("alice", "born")
    # Its address is free again for the next one (a positive control on the same path).
    again = newborn(context, "again")
    assert reserve(context, again) == address


def test_a_successful_birth_is_ready_with_its_forward_open(context: FakeContext) -> None:
    born = newborn(context)
    address = reserve(context, born)
    build(context, born, address, make_plain(context, "born"), lambda message: None)
    env = context.database.environments.get("alice", "born")
    assert (env.status, env.address) == ("ready", address)
    assert f"{address}:22" in context.host.jump_accounts.allowed["alice"]  # type: ignore[attr-defined]


def test_reserve_refuses_a_taken_name_and_a_quota_overrun(context: FakeContext) -> None:
    reserve(context, newborn(context))
    with pytest.raises(Conflict, match="already exists"):
        reserve(context, newborn(context))
    big = Limits(cpu=8, memory_bytes=GIB, disk_bytes=GIB, processes=100)
    with pytest.raises(QuotaExceeded):
        reserve(context, newborn(context, "big", big))
