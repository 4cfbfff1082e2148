"""CLI commands of the time machine: snapshot, snapshots, restore (through the daemon's API).

`cloche snapshot` takes a verb in place of the address when its first argument is one:
    cloche snapshot USER/NAME [LABEL]               take a manual snapshot
    cloche snapshot rm USER/NAME SNAPSHOT           delete one
    cloche snapshot policy USER/NAME [--hourly N]   show or override the retention policy
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from cloche.cli import remote
from cloche.cli.common import console, handle_errors
from cloche.cli.remote import JsonOption, NoWaitOption
from cloche.model.errors import Invalid
from cloche.model.names import split_address

if TYPE_CHECKING:
    from cloche.wire import SnapshotPolicy

VERBS = ("rm", "policy")
Count = Annotated[int | None, typer.Option(min=0, help="How many to keep.")]


def _show_policy(policy: SnapshotPolicy, as_json: bool) -> None:
    if as_json:
        remote.print_json(policy)
        return
    state = "on" if policy.scheduler_enabled else "off (config snapshots.enabled)"
    console().print(f"scheduled snapshots of {policy.environment}: {state}", highlight=False)
    for tier, count in policy.effective.model_dump().items():
        source = "this environment" if tier in policy.overrides else "host default"
        console().print(f"  {tier:15} {count:>5}  ({source})", highlight=False)


@handle_errors
def snapshot(
    first: Annotated[str, typer.Argument(help="USER/NAME, or the verb rm or policy.")],
    second: Annotated[
        str | None, typer.Argument(help="LABEL, or USER/NAME after a verb.", show_default=False)
    ] = None,
    third: Annotated[
        str | None, typer.Argument(help="SNAPSHOT after rm.", show_default=False)
    ] = None,
    quarter_hourly: Count = None,
    hourly: Count = None,
    daily: Count = None,
    weekly: Count = None,
    monthly: Count = None,
    reset: Annotated[
        bool, typer.Option("--reset", help="policy: drop this environment's overrides first.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Take a snapshot now: 'snapshot USER/NAME [LABEL]'; also 'snapshot rm USER/NAME SNAPSHOT'
    and 'snapshot policy USER/NAME [--quarter-hourly N --hourly N --daily N --weekly N
    --monthly N | --reset]'. Manual snapshots are never pruned."""
    counts = {
        "quarter_hourly": quarter_hourly,
        "hourly": hourly,
        "daily": daily,
        "weekly": weekly,
        "monthly": monthly,
    }
    changes = {key: value for key, value in counts.items() if value is not None}
    if first != "policy" and (changes or reset):
        raise Invalid(
            "The retention options belong to 'cloche snapshot policy USER/NAME'; put 'policy' "
            "before the address."
        )
    if first == "rm":
        if second is None or third is None:
            raise Invalid("Name what to delete: 'cloche snapshot rm USER/NAME SNAPSHOT'.")
        user, name = split_address(second)
        with remote.client() as client:
            client.snapshots.remove(user, name, third)
        console().print(f"removed snapshot {third} of {second}", highlight=False)
        return
    if first == "policy":
        if second is None or third is not None:
            raise Invalid("Name one environment: 'cloche snapshot policy USER/NAME [--hourly N]'.")
        user, name = split_address(second)
        with remote.client() as client:
            if changes or reset:
                policy = client.snapshots.set_policy(user, name, **changes, reset=reset)
            else:
                policy = client.snapshots.policy(user, name)
        _show_policy(policy, as_json)
        return
    if third is not None:
        raise Invalid(
            f"'cloche snapshot {first}' takes at most a label; verbs are {', '.join(VERBS)}."
        )
    user, name = split_address(first)
    with remote.client() as client:
        taken = client.snapshots.take(user, name, second)
    if as_json:
        remote.print_json(taken)
    else:
        console().print(f"took snapshot {taken.name} of {first}", highlight=False)


@handle_errors
def list_snapshots(
    address: Annotated[str, typer.Argument(help="USER/NAME")], as_json: JsonOption = False
) -> None:
    """List an environment's snapshots, oldest first (kind: scheduled or manual)."""
    user, name = split_address(address)
    with remote.client() as client:
        listed = client.snapshots.list(user, name)
    if as_json:
        remote.print_json(listed)
        return
    from rich.table import Table

    table = Table("snapshot", "taken (UTC)", "kind")
    for item in listed:
        table.add_row(item.name, item.created_at, item.kind)
    console().print(table)


@handle_errors
def restore(
    address: Annotated[str, typer.Argument(help="USER/NAME")],
    snapshot_name: Annotated[str, typer.Argument(metavar="SNAPSHOT", help="The snapshot.")],
    as_new: Annotated[
        str | None,
        typer.Option(
            "--as-new", metavar="NEWNAME", help="Make a new environment instead of in place."
        ),
    ] = None,
    no_wait: NoWaitOption = False,
) -> None:
    """Restore an environment to a snapshot in place (it restarts), or --as-new NEWNAME."""
    user, name = split_address(address)
    with remote.client() as client:
        if as_new is None:
            started = client.snapshots.restore(user, name, snapshot_name)
            done = f"restored {address} to {snapshot_name}"
        else:
            started = client.snapshots.restore_as_new(user, name, snapshot_name, as_new)
            done = f"restored {address}@{snapshot_name} as {user}/{as_new}"
        remote.run_operation(started, no_wait, done)


def register_snapshot_commands(app: typer.Typer) -> None:
    """Add snapshot, snapshots and restore to the top-level app."""
    app.command("snapshot")(snapshot)
    app.command("snapshots")(list_snapshots)
    app.command("restore")(restore)
