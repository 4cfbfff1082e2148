"""Pure: who makes a call (a principal) and the one decision of what it may do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

from cloche.model.errors import Forbidden, Invalid, NotFound, Unauthenticated
from cloche.model.names import check_user_name, no_such_environment, no_such_user
from cloche.model.records import Role, UserRecord
from cloche.model.tokens import SCOPES, scopes_allow

# What a call does to its target; a route names one. "admin" is everything else.
Action = Literal["read", "write", "exec", "admin"]
ACTIONS: Final[tuple[str, ...]] = get_args(Action)
# Members of this host group are admins on the local socket, like root.
ADMIN_GROUP: Final = "cloche-admin"
ALL_SCOPES: Final = frozenset(SCOPES)


@dataclass(frozen=True)
class Principal:
    """A caller: an admin or a member acting as a cloche user, and how it was identified."""

    name: str
    role: Role
    # The cloche user a member acts as (None for an admin that is only a host account).
    user: str | None
    # How the call was identified, for the audit log: "socket uid 1000", "token tk_...".
    via: str
    # A token's scopes (model/tokens.py); a caller on the socket has them all.
    scopes: frozenset[str] = ALL_SCOPES
    # The environment names a token is limited to (None: every one of its user's).
    environments: frozenset[str] | None = None
    token_id: str | None = None

    @property
    def is_admin(self) -> bool:
        """Whether the principal may do everything: an admin, through a token with that scope."""
        return self.role == "admin" and "admin" in self.scopes

    @property
    def actor(self) -> str:
        """The name audit events record as the actor (with the token's id when one was used)."""
        return self.name if self.token_id is None else f"{self.name} token {self.token_id}"


def check_scopes(principal: Principal, action: Action) -> None:
    """Refuse an action the principal's token scopes do not cover (403)."""
    if not scopes_allow(principal.scopes, action):
        raise Forbidden(
            f"This token may {', '.join(sorted(principal.scopes))} only, not {action}; create "
            f"one with --scope {action}."
        )


def authorize(
    principal: Principal, action: Action, owner: str | None, environment: str | None = None
) -> None:
    """Allow the call, or raise: another tenant's things are 404, admin-only things 403.

    owner is the cloche user whose thing the call touches (None: the host or every user);
    environment, the environment it names, if any.
    """
    check_scopes(principal, action)
    if principal.is_admin:
        return
    if action == "admin":
        raise Forbidden(
            f"Only an admin may do this; {principal.name!r} is a member. Ask an admin of this host."
        )
    if owner is None:
        raise Forbidden(
            f"Only an admin may act on every user at once; {principal.name!r} can name their "
            "own user instead."
        )
    if owner != principal.user:
        # Not 403: a member must not learn which other users or environments exist.
        raise NotFound(no_such_user(owner))
    if (
        environment is not None
        and principal.environments is not None
        and environment not in principal.environments
    ):
        raise NotFound(no_such_environment(owner, environment))


def visible_user(principal: Principal, wanted: str | None) -> str | None:
    """The user a listing is limited to: the caller's own for a member, as asked for an admin."""
    if principal.is_admin:
        return wanted
    if wanted is not None and wanted != principal.user:
        raise NotFound(no_such_user(wanted))
    return principal.user


@dataclass(frozen=True)
class HostAccount:
    """A host account as the host's account database knows it."""

    name: str
    uid: int
    groups: frozenset[str]


def principal_of_account(
    account: HostAccount | None, uid: int, mapped: UserRecord | None
) -> Principal:
    """The principal of a local caller: root and cloche-admin are admins, a mapped account its user.

    mapped is the cloche user whose host account this is (None when none is).
    """
    via = f"socket uid {uid}"
    if uid == 0:
        return Principal(name=account.name if account else "root", role="admin", user=None, via=via)
    if account is None:
        raise Unauthenticated(
            f"uid {uid} has no host account; call the daemon from a host account an admin "
            "mapped to a cloche user."
        )
    if mapped is not None:
        return Principal(name=mapped.name, role=mapped.role, user=mapped.name, via=via)
    if ADMIN_GROUP in account.groups:
        return Principal(name=account.name, role="admin", user=None, via=via)
    raise Unauthenticated(
        f"The host account {account.name!r} is not a cloche user; an admin can map it with "
        f"'cloche user set USER --host-account {account.name}'."
    )


def operation_owner(target: str) -> str | None:
    """The user an operation's target belongs to ("alice/web" -> "alice"), None for the host's."""
    user, slash, _ = target.partition("/")
    if not slash:
        return None
    try:
        return check_user_name(user)
    except Invalid:
        return None
