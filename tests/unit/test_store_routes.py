"""The route store: an endpoint belongs to one environment at most; routes go with their env."""

from __future__ import annotations

import pytest

from cloche.model.errors import Conflict, NotFound
from cloche.store.database import Database
from tests.unit.storelib import ENVIRONMENT, QUOTAS


@pytest.fixture
def published(database: Database) -> Database:
    """alice/web, alice/api and bob/web, with one tcp route of alice/web."""
    database.users.add("alice", **QUOTAS)
    database.users.add("bob", **QUOTAS)
    for user, name in (("alice", "web"), ("alice", "api"), ("bob", "web")):
        database.environments.add(user, name, **ENVIRONMENT)
    database.routes.add("alice", "web", "tcp://8022:22", "tcp:8022")
    return database


def test_add_list_and_remove_routes(published: Database) -> None:
    published.routes.add("alice", "api", "https://api.test", "https://api.test/")
    published.routes.add("bob", "web", "tcp://9000:80", "tcp:9000")
    assert [route.spec for route in published.routes.list()] == [
        "https://api.test",
        "tcp://8022:22",
        "tcp://9000:80",
    ]
    assert [route.spec for route in published.routes.list("alice")] == [
        "https://api.test",
        "tcp://8022:22",
    ]
    assert [route.spec for route in published.routes.list("alice", "web")] == ["tcp://8022:22"]
    removed = published.routes.remove("alice", "web", "tcp://8022:22")
    assert (removed.endpoint, removed.created_at.tzinfo is not None) == ("tcp:8022", True)
    assert published.routes.list("alice", "web") == []


def test_a_taken_endpoint_is_a_conflict_that_names_only_the_callers_own_env(
    published: Database,
) -> None:
    with pytest.raises(Conflict, match="published by alice/web"):
        published.routes.add("alice", "api", "tcp://8022:80", "tcp:8022")
    with pytest.raises(Conflict, match="published by another user") as refused:
        published.routes.add("bob", "web", "tcp://8022:80", "tcp:8022")
    assert "alice" not in str(refused.value)
    assert len(published.routes.list()) == 1


def test_route_errors_and_routes_go_with_their_environment(published: Database) -> None:
    with pytest.raises(NotFound):
        published.routes.add("alice", "nope", "tcp://8023:22", "tcp:8023")
    with pytest.raises(NotFound, match="not published by alice/api"):
        published.routes.remove("alice", "api", "tcp://8022:22")
    published.environments.delete("alice", "web")
    assert published.routes.list() == []
