"""The CLI against the real API app on fakes: --json goldens, the tables, exit codes, waiting.

The commands run through typer's CliRunner on cloche.cli.main.app; their client is pointed at
a TestClient of create_app(context, header_caller) through cli/remote.py's client_factory.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloche.api.app import create_app
from cloche.cli import common, remote
from cloche.cli.main import app
from cloche.client import Client
from cloche.model.errors import Conflict, HostFailure, Invalid, NotFound
from cloche.model.instances import ExecResult
from tests.unit.callers import ADMIN_HEADER, header_caller
from tests.unit.fakes import DATA, FakeContext, TestClient
from tests.unit.golden import assert_golden
from tests.unit.served import ACTOR


@pytest.fixture
def context(served_world: FakeContext) -> FakeContext:
    return served_world


@pytest.fixture
def cli(context: FakeContext, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """A runner whose commands talk to the app on context, on an 100-column terminal."""
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("NO_COLOR", "1")
    # A console per test: rich reads the width and the colours when it is made.
    common.console.cache_clear()
    common.error_console.cache_clear()
    with TestClient(create_app(context, header_caller), headers={ADMIN_HEADER: ACTOR}) as http:
        monkeypatch.setattr(remote, "client_factory", lambda: Client(http=http))
        yield CliRunner()
    common.console.cache_clear()
    common.error_console.cache_clear()


def run(cli: CliRunner, *argv: str, code: int = 0) -> str:
    """Run one command; check its exit code; return what it printed on stdout."""
    result = cli.invoke(app, list(argv))
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result.stdout


# --json goldens: the field names scripts read stay --------------------------------------------

GOLDEN_JSON = {
    "list": ("list", "--json"),
    "list-alice": ("list", "--user", "alice", "--json"),
    "info": ("info", "alice/web", "--json"),
    "user-show": ("user", "show", "alice", "--json"),
    "user-list": ("user", "list", "--json"),
    "routes": ("routes", "--json"),
    "routes-env": ("routes", "alice/web", "--json"),
    "snapshots": ("snapshots", "alice/web", "--json"),
    "snapshot-policy": ("snapshot", "policy", "alice/web", "--json"),
    "egress": ("egress", "alice/web", "--json"),
}


@pytest.mark.parametrize("name", GOLDEN_JSON)
def test_json_output_is_golden(cli: CliRunner, name: str) -> None:
    output = run(cli, *GOLDEN_JSON[name])
    assert_golden(f"cli/{name}.json", output)


def test_list_and_info_keep_the_fields_scripts_read(cli: CliRunner) -> None:
    listed = json.loads(run(cli, "list", "--json"))
    shown = json.loads(run(cli, "info", "alice/web", "--json"))
    wanted = {"user", "name", "state", "address", "profile", "limits"}
    assert all(wanted <= set(env) for env in listed)
    assert wanted | {"routes"} <= set(shown)
    assert shown["routes"] == ["https://web.example:8080", "tcp://2222:22"]


# Tables: what the commands printed before they ran on the typed client -----------------------

GOLDEN_TABLES = {
    "list": ("list",),
    "info": ("info", "alice/web"),
    "user-list": ("user", "list"),
    "user-show": ("user", "show", "bob"),
    "routes": ("routes",),
    "routes-none": ("routes", "bob"),
    "snapshots": ("snapshots", "alice/web"),
    "snapshot-policy": ("snapshot", "policy", "alice/web"),
    "egress": ("egress", "alice/web"),
    "audit-verify": ("audit", "verify"),
}


@pytest.mark.parametrize("name", GOLDEN_TABLES)
def test_table_output_is_golden(cli: CliRunner, name: str) -> None:
    output = run(cli, *GOLDEN_TABLES[name])
    assert_golden(f"cli/{name}.txt", output)


def test_changes_print_one_line_each(cli: CliRunner, context: FakeContext) -> None:
    assert run(cli, "resize", "alice/db", "--cpu", "1") == (
        "resized alice/db: cpu 1, memory 2GiB, disk 10GiB, processes 512\n"
    )
    assert run(cli, "user", "set", "bob", "--cpu", "6") == "updated quotas of bob\n"
    assert run(cli, "egress", "alice/web", "none") == "egress of alice/web: none (was open)\n"
    assert run(cli, "publish", "alice/db", "tcp://2223:5432") == (
        "published tcp://host.example:2223 -> 127.0.0.1:5432 inside alice/db\n"
    )
    assert run(cli, "publish", "alice/db", "tcp://2223:5432").startswith("already published")
    assert run(cli, "unpublish", "alice/db", "tcp://2223:5432") == (
        "unpublished tcp://2223:5432 of alice/db\n"
    )
    assert run(cli, "snapshot", "alice/db", "first") == "took snapshot first of alice/db\n"
    assert run(cli, "snapshot", "rm", "alice/db", "first") == "removed snapshot first of alice/db\n"
    key = (DATA / "rsa3072.pub").as_posix()
    added = run(cli, "user", "key", "add", "bob", key)
    fingerprint = re.fullmatch(r"added key (\S+) to bob\n", added)
    assert fingerprint is not None
    assert run(cli, "user", "key", "rm", "bob", fingerprint[1]) == (
        f"removed key {fingerprint[1]} from bob\n"
    )


def test_key_changes_say_which_environments_wait_or_failed(
    cli: CliRunner, context: FakeContext
) -> None:
    context.user_instances("alice").stop("db")
    context.fake.exec_handler = lambda project, name, argv, options: (
        ExecResult(1, b"", b"disk full") if name == "web" else None
    )
    key = (DATA / "rsa3072.pub").as_posix()

    result = cli.invoke(app, ["user", "key", "add", "alice", key])

    assert result.exit_code == HostFailure.exit_code, result.stdout
    assert "alice/db is stopped: it takes the current keys when it next starts" in result.stdout
    assert "did not reach alice/web" in result.stderr
    assert "disk full" in result.stderr
    fingerprint = re.search(r"added key (\S+) to alice", result.stdout)
    assert fingerprint is not None
    context.fake.exec_handler = None
    removed = run(cli, "user", "key", "rm", "alice", fingerprint[1], "--json")
    assert json.loads(removed)["push"] == {"failed": {}, "pushed": ["web"], "waiting": ["db"]}


def _ed25519(seed: int) -> str:
    """A well-formed ed25519 public key line nobody in the served world has."""
    blob = b"".join(
        len(part).to_bytes(4, "big") + part for part in (b"ssh-ed25519", bytes(31) + bytes([seed]))
    )
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} spare"


def test_key_add_adds_each_key_of_a_file_or_none(cli: CliRunner, tmp_path: Path) -> None:
    keys = tmp_path / "keys.pub"
    keys.write_text(f"# work laptop\n{(DATA / 'rsa3072.pub').read_text()}\n{_ed25519(7)}")
    added = run(cli, "user", "key", "add", "bob", str(keys)).splitlines()
    assert len(added) == 2
    assert all(re.fullmatch(r"added key SHA256:\S+ to bob", line) for line in added)
    before = json.loads(run(cli, "user", "show", "bob", "--json"))["ssh_keys"]
    # One bad line refuses the whole file, naming the line; nothing is added.
    keys.write_text(f"{(DATA / 'ed25519.pub').read_text()}{(DATA / 'rsa1024.pub').read_text()}")
    result = cli.invoke(app, ["user", "key", "add", "bob", str(keys)])
    assert result.exit_code == Invalid.exit_code
    assert result.stderr.startswith(f"error: The key file {keys}, line 2: This RSA key has 1024")
    assert result.stderr.count("\n") == 1
    assert json.loads(run(cli, "user", "show", "bob", "--json"))["ssh_keys"] == before


# Long operations ------------------------------------------------------------------------------


def test_create_waits_and_says_how_long(cli: CliRunner, context: FakeContext) -> None:
    output = run(cli, "create", "alice/cache", "--memory", "1GiB", "--disk", "5GiB")
    assert re.fullmatch(r"created alice/cache \(\d+\.\d s\)\n", output), output
    assert context.database.environments.get("alice", "cache").status == "ready"


def test_no_wait_prints_the_operation_to_follow(cli: CliRunner) -> None:
    operation_id = run(cli, "stop", "alice/web", "--no-wait").strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", operation_id)
    run(cli, "operation", operation_id, "--wait")
    shown = json.loads(run(cli, "operation", operation_id, "--json"))
    assert (shown["kind"], shown["target"], shown["status"]) == (
        "stop environment",
        "alice/web",
        "succeeded",
    )
    assert json.loads(run(cli, "info", "alice/web", "--json"))["state"] == "Stopped"
    table = run(cli, "operation", operation_id)
    assert re.search(r"^status +succeeded$", table, re.MULTILINE)


def test_a_failed_operation_exits_with_its_error(cli: CliRunner, context: FakeContext) -> None:
    context.fake.fail_boot = True
    result = cli.invoke(app, ["create", "alice/bad"])
    assert result.exit_code == HostFailure.exit_code
    assert "stopped while booting" in result.stderr


def test_removal_needs_yes_without_a_terminal(cli: CliRunner) -> None:
    result = cli.invoke(app, ["rm", "alice/db"])
    assert result.exit_code == Invalid.exit_code
    assert "add --yes" in result.stderr
    assert run(cli, "rm", "alice/db", "--yes").startswith("removed alice/db (")


def test_exec_passes_output_and_exit_status(cli: CliRunner, context: FakeContext) -> None:
    context.fake.exec_handler = lambda project, name, argv, options: ExecResult(
        3, b"out:" + (options["stdin"] or b""), b"err\n"
    )
    result = cli.invoke(app, ["exec", "alice/web", "--", "cat"], input="hello")
    assert result.exit_code == 3
    assert result.stdout == "out:hello"
    assert result.stderr == "err\n"


# Errors: one line on stderr, the exit code of the error class ---------------------------------


@pytest.mark.parametrize(
    ("argv", "code", "words"),
    [
        (("info", "alice/nope"), NotFound.exit_code, "nope"),
        (("info", "alice"), Invalid.exit_code, "USER/NAME"),
        (("user", "show", "zoe"), NotFound.exit_code, "zoe"),
        (("create", "alice/web"), Conflict.exit_code, "already"),
        (("create", "alice/big", "--memory", "lots"), Invalid.exit_code, "memory"),
        (("snapshots", "bob/nope"), NotFound.exit_code, "nope"),
        (("ssh-config", "alice", "--host", "h\nProxyCommand x"), Invalid.exit_code, "SSH host"),
        (("user", "key", "add", "bob", "/nonexistent/k.pub"), Invalid.exit_code, "Cannot read"),
    ],
)
def test_errors_exit_with_their_code(
    cli: CliRunner, argv: tuple[str, ...], code: int, words: str
) -> None:
    result = cli.invoke(app, list(argv))
    assert result.exit_code == code, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert words in result.stderr
    assert result.stderr.count("\n") == 1


def test_no_daemon_is_a_host_failure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLOCHE_SOCKET", str(tmp_path / "none.sock"))
    common.error_console.cache_clear()
    result = CliRunner().invoke(app, ["list"])
    assert result.exit_code == HostFailure.exit_code
    assert "does not answer on" in result.stderr
    assert "none.sock" in result.stderr


# Start-up: a command loads only what it needs ---------------------------------------------------

PROBE = """
import sys
sys.argv = ["cloche", *sys.argv[1:]]
try:
    from cloche.cli.main import main
    main()
except SystemExit:
    pass
heavy = ("httpx", "pydantic", "rich", "fastapi", "uvicorn", "pylxd", "yaml")
layers = ("cloche.client", "cloche.wire", "cloche.api", "cloche.core", "cloche.store")
print(sorted(name for name in (*heavy, *layers) if name in sys.modules), file=sys.stderr)
"""


def _loaded_by(*argv: str, tmp_path: Path) -> list[str]:
    environment = {"CLOCHE_SOCKET": str(tmp_path / "none.sock"), "PATH": "/usr/bin:/bin"}
    shown = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
    )
    loaded: list[str] = json.loads(shown.stderr.splitlines()[-1].replace("'", '"'))
    return loaded


def test_version_loads_no_client_and_no_rich(tmp_path: Path) -> None:
    assert _loaded_by("--version", tmp_path=tmp_path) == []


def test_an_api_command_loads_the_client_but_nothing_below_it(tmp_path: Path) -> None:
    loaded = _loaded_by("list", tmp_path=tmp_path)
    assert {"httpx", "cloche.client", "cloche.wire"} <= set(loaded)
    assert not {"fastapi", "uvicorn", "pylxd", "cloche.api", "cloche.core"} & set(loaded)
