"""The API fuzz's world: a FakeContext holding data, served by the real app, put back when changed.

The seed is two users (alice with the environments web, running, and db, stopped; bob with
none), a snapshot and a published route of web, a second backup repository and one backup of
web, so that fuzzed requests which name these things get past their first lookup. A request
that changes the world (a stop, a removal, a new quota) makes the next example start from a
fresh seed, so every example meets the same data.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Hashable
from pathlib import Path
from typing import Any, cast

from cloche.api.app import create_app
from cloche.core import (
    backup_repositories,
    backup_run,
    environments,
    routes,
    snapshots,
    ssh_access,
)
from cloche.model.errors import ClocheError
from tests.unit.callers import header_caller
from tests.unit.fakes import (
    GIB,
    HOST_KEYS,
    FakeContext,
    FakeNetwork,
    TestClient,
    add_user,
    make_context,
    new_env,
    wait_operation,
)

ACTOR = "fuzz-seed"
SNAPSHOT = "before-upgrade"
ROUTE = "https://web.alice.example.test"
REPOSITORY = "offsite"
REPOSITORY_URL = "s3:http://10.0.0.5:9000/cloche"


class FuzzNetwork(FakeNetwork):
    """The host's network as the fuzz sees it: no port is held, the name is fixed."""

    def port_in_use(self, protocol: str, port: int) -> bool:
        """No host port is held."""
        return False

    def fqdn(self) -> str:
        """A fixed name, so no DNS is asked."""
        return "cloche.example.test"


class FakeHostKeys:
    """The host's sshd as the ssh-config route reads it: its public keys only."""

    def host_public_keys(self) -> list[str]:
        """One fixed host key."""
        return [HOST_KEYS["ssh-ed25519"]]


class CrashLog(logging.Handler):
    """Keeps every record an operation logs when it crashes (an unexpected exception)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.crashes: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Remember the message and its traceback."""
        self.crashes.append(self.format(record))


@dataclasses.dataclass
class Seeded:
    """What the seed made that requests may name: ids the store and the fakes chose."""

    fingerprint: str
    backup_id: str
    operation_id: str


def _seed(context: FakeContext) -> Seeded:
    alice = add_user(context, "alice", max_envs=4, cpu=8, memory_bytes=16 * GIB)
    add_user(context, "bob", keys=("ecdsa",))
    for name in ("web", "db"):
        _wait(context, environments.request_create(context, ACTOR, new_env(name)))
    stop = environments.request_action(context, ACTOR, "alice", "db", "stop")
    _wait(context, stop)
    snapshots.take_snapshot(context, ACTOR, "alice", "web", SNAPSHOT)
    routes.publish(context, ACTOR, "alice", "web", ROUTE)
    backup_repositories.add_repository(
        context,
        ACTOR,
        REPOSITORY,
        REPOSITORY_URL,
        password="fuzz-password",
        s3_access_key="access",
        s3_secret_key="secret",
    )
    backup_repositories.ensure_local_repository(
        context.state_dir, context.host.secrets, context.host.restic, context.host.backup_files
    )
    web = context.database.environments.get("alice", "web")
    local = backup_repositories.repository(context, None)
    backup = backup_run.backup_environment(context, local, web)
    keys = context.database.users.list_keys(alice.record.name)
    return Seeded(keys[0].fingerprint, backup.id, stop)


def _state(context: FakeContext) -> Hashable:
    """Everything a request can change, in a form that compares equal while nothing did."""
    database = context.database
    users = tuple(database.users.list())
    keys = tuple(database.users.list_keys())
    # The state hint and the address follow what listings saw; they are not the world's data.
    envs = tuple(
        repr(dataclasses.replace(env, state_hint=None, address=None))
        for env in database.environments.list()
    )
    instances = tuple(
        (project, name, repr(instance.info), tuple(instance.snapshots))
        for project, by_name in sorted(context.fake.instances.items())
        for name, instance in sorted(by_name.items())
    )
    catalog = tuple(context.backup_catalog.list(context.state_dir))
    repositories = repr(backup_repositories.list_repositories(context))
    return users, keys, envs, instances, tuple(database.routes.list()), catalog, repositories


def _wait(context: FakeContext, operation_id: str) -> None:
    """Wait for a seeding operation, polling faster than the tests' wait_operation."""
    deadline = time.monotonic() + 10
    while not context.database.operations.get(operation_id).finished:
        assert time.monotonic() < deadline, f"operation {operation_id} did not finish"
        time.sleep(0.0005)
    assert context.database.operations.get(operation_id).status == "succeeded"


# What every name the world stores looks like, whatever a request sent.
PLAIN_NAME = re.compile(r"[A-Za-z0-9._-]+")


def stored_names(context: FakeContext) -> list[str]:
    """Every user, environment, snapshot and repository name the world holds."""
    database = context.database
    names = [user.name for user in database.users.list()]
    names += [env.name for env in database.environments.list()]
    names += [
        snapshot
        for by_name in context.fake.instances.values()
        for instance in by_name.values()
        for snapshot in instance.snapshots
    ]
    names += [each.repository.name for each in backup_repositories.list_repositories(context)]
    return names


def unrenderable(context: FakeContext) -> list[str]:
    """What of the world's generated files no longer renders (a poisoned user), or holds a
    stored value of more than one line; [] when everything does."""
    found = []
    database = context.database
    for user in database.users.list():
        try:
            ssh_access.jump_keys(context, user.name)
            ssh_access.ssh_config(context, user.name, None, None, "/home/fuzz/known_hosts")
        except ClocheError as error:
            found.append(f"{user.name}: {error}")
    values = [(key.public_key, key.comment) for key in database.users.list_keys()]
    values += [(route.spec, route.endpoint) for route in database.routes.list()]
    found += [repr(value) for pair in values for value in pair if not str(value).isprintable()]
    return found


def _copied(fakes: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of the context's fakes; the fake LXD's lock, which cannot be copied, is new."""
    return copy.deepcopy(fakes, {id(fakes["fake"]._lock): threading.RLock()})


# Context fields a restore opens again on the copied files, or makes new, rather than copying.
_REOPENED = frozenset(
    {"config", "state_dir", "database", "audit", "operations", "_locks", "_locks_guard"}
)


class World:
    """The seeded context, the app on it and a client; put back as seeded after a change.

    The seed runs once; its state directory (database, audit log) and its fakes are kept as a
    template, and a changed world is put back by copying them, which is far quicker than seeding
    again. The app holds one context object for the whole fuzz, so a restore sets its fields.
    """

    def __init__(self) -> None:
        self._directory = tempfile.TemporaryDirectory()
        root = Path(self._directory.name)
        self._template = root / "template"
        self.restores = 0
        self.crash_log = CrashLog()
        logging.getLogger("cloche.core.operations").addHandler(self.crash_log)
        self.context = make_context(root)
        # The only host reads the API makes (the fakes leave them real): the name, ports, keys.
        self.context.host.network = FuzzNetwork()
        self.context.host.sshd = cast(Any, FakeHostKeys())
        self.seeded = _seed(self.context)
        self._fakes = self._copy_fakes()
        self._close_stores()
        shutil.copytree(self.context.state_dir, self._template)
        self._restore()
        self.client = TestClient(create_app(self.context, header_caller), follow_redirects=False)
        self.client.__enter__()

    def _copy_fakes(self) -> dict[str, Any]:
        fakes = {
            each.name: getattr(self.context, each.name)
            for each in dataclasses.fields(self.context)
            if each.name not in _REOPENED
        }
        return _copied(fakes)

    def _close_stores(self) -> None:
        self.context.operations.shutdown()
        self.context.database.close()

    def _restore(self) -> None:
        state_dir = self.context.state_dir
        shutil.rmtree(state_dir)
        shutil.copytree(self._template, state_dir)
        fresh = make_context(state_dir.parent)
        for name in ("database", "audit", "operations", "_locks", "_locks_guard"):
            setattr(self.context, name, getattr(fresh, name))
        for name, value in _copied(self._fakes).items():
            setattr(self.context, name, value)
        state = _state(self.context)
        self._pristine = getattr(self, "_pristine", state)
        assert state == self._pristine, "the restored world differs from the seeded one"

    def ensure_pristine(self) -> None:
        """Put the seeded world back if a request changed this one."""
        if _state(self.context) != self._pristine:
            self._close_stores()
            self._restore()
            self.restores += 1

    def finish_operation(self, body: Any) -> None:
        """Wait for the operation a 202 answer names, so none outlives its example."""
        if isinstance(body, dict) and isinstance(body.get("operation"), str):
            wait_operation(self.context, body["operation"], timeout=10)

    def close(self) -> None:
        """Stop the client, wait for operations, close the database, remove the files."""
        self.client.__exit__(None, None, None)
        logging.getLogger("cloche.core.operations").removeHandler(self.crash_log)
        self._close_stores()
        self._directory.cleanup()
