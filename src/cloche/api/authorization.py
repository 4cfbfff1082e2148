"""Every call authorized in one place: each route's rule, and the dependency that applies it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Final, Literal

from fastapi import Depends, Request
from fastapi.routing import APIRoute

from cloche.model.errors import Forbidden, Unauthenticated
from cloche.model.principals import Action, Principal, authorize, check_scopes, visible_user

# Where a route's target user is: a path parameter, the body's "user" field, nowhere (the host
# or everything), or decided by the route itself (a listing narrowed by `ListedUser`, an
# operation whose owner is in its record; every authenticated caller may ask for health).
Target = Literal["path:user", "path:name", "body:user", "host", "listing", "handler", "anyone"]


@dataclass(frozen=True)
class Rule:
    """What a route does and whose thing it touches."""

    action: Action
    target: Target


READ_OWN: Final = Rule("read", "path:user")
WRITE_OWN: Final = Rule("write", "path:user")
ADMIN: Final = Rule("admin", "host")
ENV = "/v1/environments/{user}/{name}"

# (method, path) -> rule. A route missing here is refused (and a unit test names it).
RULES: Final[dict[tuple[str, str], Rule]] = {
    ("GET", "/v1/health"): Rule("read", "anyone"),
    ("GET", "/v1/operations/{operation_id}"): Rule("read", "handler"),
    ("GET", "/v1/audit"): ADMIN,
    ("GET", "/v1/audit/verify"): ADMIN,
    ("POST", "/v1/users"): ADMIN,
    ("GET", "/v1/users"): ADMIN,
    ("GET", "/v1/users/{name}"): Rule("read", "path:name"),
    ("PATCH", "/v1/users/{name}"): ADMIN,
    ("PUT", "/v1/users/{name}/host-account"): ADMIN,
    ("DELETE", "/v1/users/{name}"): ADMIN,
    ("POST", "/v1/users/{name}/keys"): Rule("write", "path:name"),
    ("POST", "/v1/users/{name}/keys/batch"): Rule("write", "path:name"),
    ("GET", "/v1/users/{name}/ssh-config"): Rule("read", "path:name"),
    ("DELETE", "/v1/users/{name}/keys/{fingerprint:path}"): Rule("write", "path:name"),
    ("POST", "/v1/environments"): Rule("write", "body:user"),
    ("GET", "/v1/environments"): Rule("read", "listing"),
    ("GET", ENV): READ_OWN,
    ("POST", f"{ENV}/exec"): Rule("exec", "path:user"),
    ("POST", f"{ENV}/start"): WRITE_OWN,
    ("POST", f"{ENV}/stop"): WRITE_OWN,
    ("POST", f"{ENV}/restart"): WRITE_OWN,
    ("DELETE", ENV): WRITE_OWN,
    ("PATCH", ENV): WRITE_OWN,
    ("GET", f"{ENV}/snapshots"): READ_OWN,
    ("POST", f"{ENV}/snapshots"): WRITE_OWN,
    ("DELETE", f"{ENV}/snapshots/{{snapshot}}"): WRITE_OWN,
    ("POST", f"{ENV}/snapshots/{{snapshot}}/restore"): WRITE_OWN,
    ("GET", f"{ENV}/snapshot-policy"): READ_OWN,
    ("PATCH", f"{ENV}/snapshot-policy"): WRITE_OWN,
    ("GET", f"{ENV}/egress"): READ_OWN,
    ("PATCH", f"{ENV}/egress"): WRITE_OWN,
    ("GET", "/v1/routes"): Rule("read", "listing"),
    ("GET", f"{ENV}/routes"): READ_OWN,
    ("POST", f"{ENV}/routes"): WRITE_OWN,
    ("DELETE", f"{ENV}/routes"): WRITE_OWN,
    ("POST", "/v1/backups/repositories"): ADMIN,
    ("GET", "/v1/backups/repositories"): ADMIN,
    ("DELETE", "/v1/backups/repositories/{name}"): ADMIN,
    ("POST", "/v1/backups"): Rule("write", "body:user"),
    ("GET", "/v1/backups"): Rule("read", "listing"),
    ("POST", "/v1/backups/check"): ADMIN,
    ("POST", "/v1/backups/forget"): ADMIN,
    ("DELETE", "/v1/backups/{backup_id}"): ADMIN,
    ("POST", "/v1/backups/{backup_id}/restore"): ADMIN,
    ("POST", "/v1/tokens"): Rule("write", "body:user"),
    ("GET", "/v1/tokens"): Rule("read", "listing"),
    ("DELETE", "/v1/tokens/{token_id}"): Rule("write", "handler"),
    ("GET", "/v1/host/bans"): ADMIN,
    ("DELETE", "/v1/host/bans/{address:path}"): ADMIN,
}

# Set by the server for each connection (api/peer.py); absent means "not from the socket".
PEER_UID: Final = "cloche.peer_uid"
Authenticate = Callable[[Request], Principal]


def rule_of(route: APIRoute) -> Rule | None:
    """The rule of a route, or None when it has none."""
    methods = sorted(route.methods or ())
    return RULES.get((methods[0], route.path)) if len(methods) == 1 else None


async def _body_user(request: Request) -> str | None:
    try:
        body = await request.json()
    except ValueError:
        return None  # not JSON: the route's own validation answers 422
    user = body.get("user") if isinstance(body, dict) else None
    return user if isinstance(user, str) else None


def authorization(authenticate: Authenticate) -> Callable[..., object]:
    """The app-wide dependency: identify the caller, then apply its route's rule."""

    async def authorize_request(request: Request) -> None:
        principal = authenticate(request)
        request.state.principal = principal
        route = request.scope.get("route")
        rule = rule_of(route) if isinstance(route, APIRoute) else None
        if rule is None:
            # A route nobody gave a rule to is nobody's: refusing it keeps a new route closed.
            raise Forbidden(
                f"{request.method} {request.url.path} has no authorization rule, so nobody may "
                "call it; report this as a bug."
            )
        if rule.target in ("anyone", "listing", "handler"):
            # Still within the token's scopes (the owner is the listing's or the handler's).
            check_scopes(principal, rule.action)
            return
        owner: str | None
        environment: str | None = None
        if rule.target == "path:user":
            owner = request.path_params.get("user")
            environment = request.path_params.get("name")
        elif rule.target == "path:name":
            owner = request.path_params.get("name")
        elif rule.target == "body:user":
            owner = await _body_user(request)
        else:
            owner = None
        authorize(principal, rule.action, owner, environment)

    return authorize_request


def caller(request: Request) -> Principal:
    """The principal the app-wide dependency identified."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        raise Unauthenticated("The caller was not identified; call the daemon through its socket.")
    return principal


Caller = Annotated[Principal, Depends(caller)]


def actor_of(principal: Caller) -> str:
    """The actor the audit log records for this call: the principal, never a client string."""
    return principal.actor


Actor = Annotated[str, Depends(actor_of)]


def listed_user(principal: Caller, user: str | None = None) -> str | None:
    """The user a listing covers: the caller's own for a member (another's is 404)."""
    return visible_user(principal, user)


ListedUser = Annotated[str | None, Depends(listed_user)]


def caller_authenticator(
    principal_of_uid: Callable[[int], Principal],
    principal_of_secret: Callable[[str, str], Principal],
) -> Authenticate:
    """Identify a caller by its bearer token when it sends one, else by its peer credentials.

    A token only narrows: on the socket, root with a member's token acts as that member.
    """
    by_peer = peer_authenticator(principal_of_uid)

    def authenticate(request: Request) -> Principal:
        header = request.headers.get("authorization")
        if header is None:
            return by_peer(request)
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated(
                "The Authorization header must be 'Bearer TOKEN'; send the secret "
                "'cloche token create' printed."
            )
        uid = request.scope.get(PEER_UID)
        via = f"socket uid {uid}" if isinstance(uid, int) else "network"
        return principal_of_secret(secret.strip(), via)

    return authenticate


def peer_authenticator(principal_of_uid: Callable[[int], Principal]) -> Authenticate:
    """Identify a caller by the peer credentials of its connection to the unix socket."""

    def authenticate(request: Request) -> Principal:
        uid = request.scope.get(PEER_UID)
        if not isinstance(uid, int):
            raise Unauthenticated(
                "This connection carries no peer credentials; call the daemon through its unix "
                "socket."
            )
        return principal_of_uid(uid)

    return authenticate
