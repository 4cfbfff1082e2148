"""Name rules for users and environments, stated so that a refusal can quote them."""

from __future__ import annotations

import ipaddress
import re

from cloche.model.errors import Invalid

USER_RULE = (
    "1 to 30 characters: a lowercase letter, then lowercase letters, digits or '-', "
    "not ending in '-'"
)
ENV_RULE = (
    "1 to 40 characters: a lowercase letter, then lowercase letters, digits or '-', "
    "not ending in '-'"
)
IMAGE_RULE = (
    "1 to 200 characters: a letter or digit, then letters, digits, '-', '.', '_', '/' or ':'"
)
HOST_RULE = (
    "a DNS name (letters, digits and '-' in dot-separated labels, at most 253 characters) "
    "or an IP address"
)
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:-]{0,199}")
_USER = re.compile(r"[a-z](?:[a-z0-9-]{0,28}[a-z0-9])?")
_ENV = re.compile(r"[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?")

# Names that would clash with accounts on the host or inside every environment.
RESERVED_USERS = frozenset(
    {"root", "admin", "cloche", "daemon", "bin", "sys", "sync", "nobody", "sshd", "lxd", "www-data"}
)
RESERVED_ENVS = frozenset({"tmpl", "template"})
_HOST_ACCOUNT = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


def check_user_name(name: str) -> str:
    """Return name if it is a valid user name; raise Invalid stating the rule otherwise."""
    if not _USER.fullmatch(name):
        raise Invalid(f"User name {name!r} is not valid; use {USER_RULE}.")
    if name in RESERVED_USERS:
        raise Invalid(f"User name {name!r} is reserved; choose another name.")
    return name


def no_such_user(name: str) -> str:
    """The sentence for a user that does not exist (or that the caller may not see)."""
    return f"There is no user named {name!r}; check the name or add the user."


def no_such_environment(user: str, name: str) -> str:
    """The sentence for an environment that does not exist (or that the caller may not see)."""
    return f"User {user!r} has no environment named {name!r}; check the name."


def no_such_token(token_id: str) -> str:
    """The sentence for a token that does not exist (or that the caller may not see)."""
    return f"There is no token {token_id[:40]!r}; 'cloche token list' shows the ids."


def no_such_operation(operation_id: str) -> str:
    """The sentence for an operation that does not exist (or that the caller may not see)."""
    return f"There is no operation {operation_id!r}; check the id."


def check_host_account_name(name: str) -> str:
    """Return name if it is a valid host account name; raise Invalid stating the rule otherwise."""
    if not _HOST_ACCOUNT.fullmatch(name):
        raise Invalid(
            f"Host account name {name!r} is not valid; use the login name of an account on "
            "this host (lowercase letters, digits, '_' and '-', at most 32, not starting with "
            "a digit or '-')."
        )
    return name


def check_environment_name(name: str) -> str:
    """Return name if it is a valid environment name; raise Invalid stating the rule otherwise."""
    if not _ENV.fullmatch(name):
        raise Invalid(f"Environment name {name!r} is not valid; use {ENV_RULE}.")
    if name in RESERVED_ENVS or name.startswith("tmpl-"):
        raise Invalid(f"Environment name {name!r} is reserved for cloche; choose another name.")
    return name


def check_image_alias(alias: str) -> str:
    """Return alias if it can name an LXD image (cloche/bookworm); raise Invalid otherwise."""
    if not _IMAGE.fullmatch(alias):
        raise Invalid(f"Image {alias!r} is not a valid image alias; use {IMAGE_RULE}.")
    return alias


def check_host_name(host: str, what: str = "Host name") -> str:
    """Return host if it is a DNS name or an IP address (it goes into ssh_config and known_hosts
    lines); raise Invalid stating the rule otherwise."""
    # A scoped IPv6 address ('fe80::1%eth0') takes any text after its '%', newlines too.
    if "%" not in host:
        try:
            return str(ipaddress.ip_address(host))
        except ValueError:
            pass
    labels = host.split(".")
    if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise Invalid(f"{what} {host[:80]!r} is not valid; use {HOST_RULE}.")
    return host


def parse_address(address: str, default_user: str | None = None) -> tuple[str, str]:
    """Split 'user/env' (or 'env' with a default user) into checked names."""
    if "/" in address:
        user, _, env = address.partition("/")
    elif default_user is not None:
        user, env = default_user, address
    else:
        raise Invalid(f"{address!r} does not say whose environment it is; write USER/NAME.")
    return check_user_name(user), check_environment_name(env)


def split_address(address: str) -> tuple[str, str]:
    """Split 'user/env' without judging the names (the daemon checks and audits them)."""
    user, slash, env = address.partition("/")
    if not slash:
        raise Invalid(f"{address!r} does not say whose environment it is; write USER/NAME.")
    return user, env
