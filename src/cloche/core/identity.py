"""Who is calling: the principal of a local caller, from the peer credentials of its socket."""

from __future__ import annotations

from cloche.core.context import Context
from cloche.model.principals import Principal, principal_of_account


def principal_of_peer(context: Context, uid: int) -> Principal:
    """The principal of the process with this uid on the other end of the daemon's socket."""
    account = context.host.identities.account(uid)
    mapped = (
        context.database.users.by_host_account(account.name)
        if account is not None and uid != 0
        else None
    )
    return principal_of_account(account, uid, mapped)
