"""Pure quota arithmetic: does a request fit in what a user is allowed?"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cloche.model.errors import QuotaExceeded
from cloche.model.units import format_size


@dataclass(frozen=True)
class Quota:
    """What one user may use in total."""

    max_envs: int
    cpu: int
    memory_bytes: int
    disk_bytes: int


@dataclass(frozen=True)
class Usage:
    """The resources one environment holds."""

    cpu: int
    memory_bytes: int
    disk_bytes: int


def check_fits(
    user: str, quota: Quota, others: Iterable[Usage], requested: Usage, *, new: bool
) -> None:
    """Raise QuotaExceeded naming the first limit that requested (with others) would pass."""
    existing = list(others)
    if new and len(existing) + 1 > quota.max_envs:
        raise QuotaExceeded(
            f"User {user!r} already has {len(existing)} of {quota.max_envs} allowed environments; "
            "remove one or raise the quota with 'cloche user set'."
        )
    checks: list[tuple[str, int, int, Callable[[int], str]]] = [
        ("CPUs", sum(u.cpu for u in existing) + requested.cpu, quota.cpu, str),
        (
            "memory",
            sum(u.memory_bytes for u in existing) + requested.memory_bytes,
            quota.memory_bytes,
            format_size,
        ),
        (
            "disk",
            sum(u.disk_bytes for u in existing) + requested.disk_bytes,
            quota.disk_bytes,
            format_size,
        ),
    ]
    for label, total, allowed, show in checks:
        if total > allowed:
            raise QuotaExceeded(
                f"User {user!r} would use {show(total)} {label} in all, over the quota of "
                f"{show(allowed)}; ask for less or raise the quota."
            )
