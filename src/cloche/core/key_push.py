"""Push a user's current keys into their environments: every one tried, each with a deadline.

A stopped environment is not an error: it waits and takes the current keys when it next starts
(start, restart, the daemon's boot pass, a restore). A running one that fails or does not answer
in time is reported, and the others are pushed all the same.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cloche.core.context import Context
from cloche.core.new_environment import PUSH_SECONDS, keys_lock, write_account
from cloche.model.audit import JsonValue
from cloche.model.errors import ClocheError

log = logging.getLogger(__name__)

# Pushes run side by side (each one is an LXD exec that mostly waits), at most this many at once.
WORKERS = 8
# What the whole push may take beyond one push's deadline (LXD's answer after the guest's kill).
GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class KeyPush:
    """Where a user's keys went: pushed, waiting (stopped, pushed at start) or failed (why)."""

    pushed: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    failed: Mapping[str, str] = field(default_factory=dict)


def _run_all(tasks: Mapping[str, Callable[[], None]], seconds: float) -> dict[str, str | None]:
    """Run the tasks on daemon threads; each name's error, None when done, or a timeout."""
    results: dict[str, str | None] = {}
    lock = threading.Lock()
    todo: queue.SimpleQueue[str] = queue.SimpleQueue()
    for name in tasks:
        todo.put(name)

    def worker() -> None:
        while True:
            try:
                name = todo.get_nowait()
            except queue.Empty:
                return
            try:
                tasks[name]()
                outcome = None
            except ClocheError as error:
                outcome = str(error)
            except Exception as error:  # a bug or a broken connection: report it, go on
                outcome = f"internal error: {error}"
            with lock:
                results[name] = outcome

    # Daemon threads: one stuck in LXD never holds up the caller beyond the deadline.
    threads = [
        threading.Thread(target=worker, name="key-push", daemon=True)
        for _ in range(min(WORKERS, len(tasks)))
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    with lock:
        late = f"it did not take the keys within {seconds:g} s"
        return {name: results.get(name, late) for name in tasks}


def push_keys(
    context: Context, user: str, actor: str, deadline_seconds: float = PUSH_SECONDS
) -> KeyPush:
    """Give each running environment of user their current keys; say which wait or failed."""
    with context.locked(keys_lock(user)):
        keys = [key.public_key for key in context.database.users.list_keys(user)]
        ready = sorted(
            env.name for env in context.database.environments.list(user) if env.status == "ready"
        )
        if not ready:
            return KeyPush()
        try:
            states = context.user_instances(user).states()
        except ClocheError as error:
            return _reported(context, user, actor, KeyPush(failed=dict.fromkeys(ready, str(error))))
        running = [name for name in ready if name in states and states[name].status == "Running"]
        outcomes = _run_all(
            {name: _pusher(context, user, name, keys) for name in running},
            deadline_seconds + GRACE_SECONDS,
        )
    push = KeyPush(
        pushed=tuple(name for name in running if outcomes[name] is None),
        waiting=tuple(name for name in ready if name not in running),
        failed={name: reason for name, reason in outcomes.items() if reason is not None},
    )
    return _reported(context, user, actor, push)


def _pusher(context: Context, user: str, name: str, keys: list[str]) -> Callable[[], None]:
    return lambda: write_account(context, user, name, keys)


def _reported(context: Context, user: str, actor: str, push: KeyPush) -> KeyPush:
    if push.failed:
        details: dict[str, JsonValue] = {
            "failed": dict(push.failed),
            "pushed": list(push.pushed),
            "waiting": list(push.waiting),
        }
        context.record(actor, "pushed keys of user", user, succeeded=False, details=details)
        log.warning("keys of %s not pushed to %s", user, ", ".join(sorted(push.failed)))
    return push


def push_everywhere(context: Context, actor: str) -> list[str]:
    """Push every user's current keys into their running environments; one line per failure."""
    findings = []
    for user in context.database.users.list():
        push = push_keys(context, user.name, actor)
        findings += [
            f"keys of {user.name} not pushed to {user.name}/{name}: {reason}"
            for name, reason in sorted(push.failed.items())
        ]
    return findings
