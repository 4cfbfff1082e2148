"""API tokens: hashed at rest, scoped, limited to environments, expiring, revocable; a token only
ever narrows who the caller is."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cloche.api.app import create_app
from cloche.api.authorization import caller_authenticator
from cloche.api.peer import WithPeer
from cloche.core import tokens
from cloche.model.errors import Forbidden, Invalid
from cloche.model.principals import Principal
from cloche.model.tokens import parse_lifetime, scopes_allow, secret_hash, token_id_of
from tests.unit.callers import header_caller, member
from tests.unit.fakes import FakeContext, TestClient, make_context, wait_operation
from tests.unit.served import world

ROOT = Principal(name="root", role="admin", user=None, via="test")


@dataclass
class FixedClock:
    """The host's clock, stopped at one moment."""

    moment: datetime

    def now(self) -> datetime:
        """The stopped moment."""
        return self.moment


@pytest.fixture
def context(tmp_path: Path) -> Iterator[FakeContext]:
    context = make_context(tmp_path)
    world(context)
    yield context
    context.operations.shutdown()


@pytest.fixture
def client(context: FakeContext) -> Iterator[TestClient]:
    """The app with callers named by the test headers."""
    app = create_app(context, header_caller)
    with TestClient(app) as client:
        yield client


def bearer(secret: str) -> dict[str, str]:
    """The header a token's caller sends."""
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def app_client(context: FakeContext) -> Iterator[TestClient]:
    """The app with the daemon's authenticator: a token if sent, else the (test) socket peer."""
    authenticate = caller_authenticator(
        lambda uid: ROOT, lambda secret, via: tokens.principal_of_secret(context, secret, via)
    )
    # As if root called through the socket (the peer protocol sets the uid per connection).
    with TestClient(WithPeer(create_app(context, authenticate), 0)) as client:
        yield client


def test_the_secret_is_shown_once_and_stored_only_as_its_hash(context: FakeContext) -> None:
    made = tokens.create_token(context, ROOT, "alice", name="laptop")
    assert token_id_of(made.secret) == made.record.id
    stored = context.database.tokens.by_hash(secret_hash(made.secret))
    assert stored is not None and stored.id == made.record.id
    raw = Path(context.database.path).read_bytes()
    assert made.secret.encode() not in raw


def test_a_token_acts_as_its_user_and_no_further(
    context: FakeContext, app_client: TestClient
) -> None:
    secret = tokens.create_token(context, ROOT, "alice").secret
    assert app_client.get("/v1/environments/alice/web", headers=bearer(secret)).status_code == 200
    assert app_client.get("/v1/environments/bob/api", headers=bearer(secret)).status_code == 404
    assert app_client.get("/v1/users", headers=bearer(secret)).status_code == 403
    # Positive control: the same call without the token is root's and succeeds.
    assert app_client.get("/v1/users").status_code == 200


def test_scopes_limit_what_a_token_may_do(context: FakeContext, app_client: TestClient) -> None:
    secret = tokens.create_token(context, ROOT, "alice", scopes=["read"]).secret
    seen = app_client.get("/v1/environments/alice/web", headers=bearer(secret))
    assert seen.status_code == 200
    stopped = app_client.post("/v1/environments/alice/web/stop", headers=bearer(secret))
    assert stopped.status_code == 403
    assert "--scope write" in stopped.json()["message"]
    ran = app_client.post(
        "/v1/environments/alice/web/exec", json={"command": ["true"]}, headers=bearer(secret)
    )
    assert ran.status_code == 403
    assert scopes_allow(frozenset({"write"}), "read")
    assert not scopes_allow(frozenset({"exec"}), "write")


def test_an_environment_limited_token_reaches_those_and_its_own_new_ones(
    context: FakeContext, app_client: TestClient
) -> None:
    secret = tokens.create_token(context, ROOT, "alice", environments=["web"]).secret
    assert app_client.get("/v1/environments/alice/web", headers=bearer(secret)).status_code == 200
    assert app_client.get("/v1/environments/alice/db", headers=bearer(secret)).status_code == 404
    made = app_client.post(
        "/v1/environments", json={"user": "alice", "name": "sandbox"}, headers=bearer(secret)
    )
    assert made.status_code == 202
    wait_operation(context, made.json()["operation"])
    sandbox = app_client.get("/v1/environments/alice/sandbox", headers=bearer(secret))
    assert sandbox.status_code == 200


def test_revoked_expired_and_malformed_tokens_get_401(
    context: FakeContext, app_client: TestClient
) -> None:
    revoked = tokens.create_token(context, ROOT, "alice")
    tokens.revoke_token(context, "root", revoked.record.id, None)
    expired = tokens.create_token(context, ROOT, "alice", lifetime="1h")
    later = expired.record.expires + timedelta(seconds=1)
    context.host.clock = FixedClock(later)
    for header in (
        bearer(revoked.secret),
        bearer(expired.secret),
        bearer("cloche_tk_000000000000_" + "A" * 43),
        bearer("not-a-token"),
        {"Authorization": "Basic cm9vdDpyb290"},
    ):
        answer = app_client.get("/v1/environments/alice/web", headers=header)
        assert answer.status_code == 401, header
        assert answer.json()["error"] == "Unauthenticated"


def test_the_audit_names_the_tokens_user_and_id(
    context: FakeContext, app_client: TestClient
) -> None:
    made = tokens.create_token(context, ROOT, "alice")
    app_client.post(
        "/v1/environments/alice/web/snapshots", json={"label": "t"}, headers=bearer(made.secret)
    )
    event = context.audit.read(limit=1)[0]
    assert event.actor == f"alice token {made.record.id}"


def test_members_create_tokens_for_themselves_never_above_their_rights(
    context: FakeContext, client: TestClient
) -> None:
    alice = member("alice")
    own = client.post("/v1/tokens", json={"user": "alice", "name": "ci"}, headers=alice)
    assert own.status_code == 201
    assert client.post("/v1/tokens", json={"user": "bob"}, headers=alice).status_code == 404
    admin = client.post("/v1/tokens", json={"user": "alice", "scopes": ["admin"]}, headers=alice)
    assert admin.status_code == 403
    listed = client.get("/v1/tokens", headers=alice).json()
    assert [token["user"] for token in listed] == ["alice"]
    bobs = tokens.create_token(context, ROOT, "bob").record.id
    assert client.delete(f"/v1/tokens/{bobs}", headers=alice).status_code == 404
    assert (
        client.delete(f"/v1/tokens/{own.json()['token']['id']}", headers=alice).status_code == 200
    )


def test_a_token_cannot_mint_a_wider_one(context: FakeContext) -> None:
    reader = tokens.create_token(context, ROOT, "alice", scopes=["read"], environments=["web"])
    principal = tokens.principal_of_secret(context, reader.secret, "test")
    with pytest.raises(Forbidden):
        tokens.create_token(context, principal, "alice", scopes=["write"])
    narrower = tokens.create_token(context, principal, "alice", scopes=["read"])
    assert narrower.record.environments == frozenset({"web"})


@pytest.mark.parametrize("text", ["0d", "30", "1y", "99999d", "3d\n"])
def test_a_bad_lifetime_is_refused_in_one_sentence(text: str) -> None:
    with pytest.raises(Invalid, match="Lifetime"):
        parse_lifetime(text)
