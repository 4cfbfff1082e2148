"""One audit event per action: succeeded when the block ends, failed when it raises."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from cloche.core.context import Context
from cloche.model.audit import JsonValue
from cloche.model.errors import ClocheError


@contextmanager
def audited(
    context: Context,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, JsonValue] | None = None,
    *,
    only_failure: bool = False,
) -> Iterator[None]:
    """Record action on target once: failed with the reason if the block raises."""
    try:
        yield
    except ClocheError as error:
        context.record(
            actor,
            action,
            target,
            succeeded=False,
            details={**(details or {}), "error": str(error)},
        )
        raise
    except Exception as error:
        context.record(
            actor,
            action,
            target,
            succeeded=False,
            details={**(details or {}), "error": f"internal error: {error}"},
        )
        raise
    if not only_failure:
        context.record(actor, action, target, details=details)


def submit_audited(
    context: Context,
    actor: str,
    action: str,
    target: str,
    work: Callable[[Callable[[str], None]], object],
    details: Mapping[str, JsonValue] | None = None,
    *,
    kind: str,
) -> str:
    """Run work(progress) as a background operation of kind, audited once when it ends."""

    def audited_work(progress: Callable[[str], None]) -> None:
        with audited(context, actor, action, target, details):
            work(progress)

    return context.operations.submit(kind, target, audited_work)
