"""Backups through the real CLI, daemon, LXD and restic: local, SFTP (host sshd) and S3 (weed)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import unique_suffix
from tests.integration.cloche_cli import cloche, cloche_json, cloche_ok
from tests.integration.test_environments import make_user, remove_user

WEED = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "weed"
S3_KEYS = ("clocheTestAccess", "clocheTestSecret0123456789")
FIGURES = Path("/tmp/cloche-backup-figures.json")


@pytest.fixture(scope="module", autouse=True)
def daemon() -> None:
    """The host is set up (with its local repository) and the daemon runs the code under test."""
    cloche_ok("host", "init")


def _free_port() -> int:
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + 10000 < 65536 and _port_free(port + 10000):
            return port


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "weed server exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"nothing answers on port {port}")


@pytest.fixture(scope="module")
def s3_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3 server (SeaweedFS) on loopback, with signed requests for one identity."""
    directory = tmp_path_factory.mktemp("weed")
    identities = directory / "identities.json"
    identities.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "cloche-test",
                        "credentials": [{"accessKey": S3_KEYS[0], "secretKey": S3_KEYS[1]}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    ports = {name: _free_port() for name in ("master", "volume", "filer", "s3")}
    (directory / "data").mkdir()
    log = (directory / "weed.log").open("wb")
    process = subprocess.Popen(
        [
            str(WEED),
            "server",
            "-ip",
            "127.0.0.1",
            "-ip.bind",
            "127.0.0.1",
            "-dir",
            str(directory / "data"),
            "-master.port",
            str(ports["master"]),
            "-volume.port",
            str(ports["volume"]),
            "-filer",
            "-filer.port",
            str(ports["filer"]),
            "-s3",
            "-s3.port",
            str(ports["s3"]),
            "-s3.config",
            str(identities),
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        _wait_for_port(ports["s3"], process)
        time.sleep(2)  # the filer behind the S3 gateway settles
        yield f"s3:http://127.0.0.1:{ports['s3']}/cloche-{unique_suffix()}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def sftp_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A dedicated host account reached through the host's sshd with its own key."""
    directory = tmp_path_factory.mktemp("sftp")
    account = f"clbk{unique_suffix()}"[:30]
    key = directory / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", account], check=True)
    try:
        home = Path(f"/home/{account}")
        ssh_dir = home / ".ssh"
        ssh_dir.mkdir(mode=0o700)
        (ssh_dir / "authorized_keys").write_text(Path(f"{key}.pub").read_text())
        shutil.chown(ssh_dir, account, account)
        shutil.chown(ssh_dir / "authorized_keys", account, account)
        os.chmod(ssh_dir / "authorized_keys", 0o600)
        command = (
            f"ssh -i {key} -o StrictHostKeyChecking=accept-new -o BatchMode=yes "
            f"-o UserKnownHostsFile={directory / 'known_hosts'} {account}@127.0.0.1 -s sftp"
        )
        yield f"sftp:{account}@127.0.0.1:/home/{account}/restic", command
    finally:
        subprocess.run(["pkill", "-u", account], check=False)
        subprocess.run(["userdel", "--remove", account], check=False, capture_output=True)


@pytest.fixture(scope="module")
def owner() -> Iterator[str]:
    """A user with room for two environments at a time."""
    name = make_user("--max-envs", "3", "--cpu", "3", "--memory", "3GiB", "--disk", "30GiB")
    try:
        yield name
    finally:
        remove_user(name)


@pytest.fixture(scope="module")
def repositories() -> Iterator[list[str]]:
    """Repository names tests add; each is forgotten afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        for _ in range(10):  # retried: the daemon may be restarting
            if cloche("backup", "repo", "rm", name).returncode == 0:
                break
            time.sleep(2)


def _checksums(address: str) -> str:
    return cloche_ok(
        "exec", address, "--", "sh", "-c", "cd ~ && sha256sum data.bin notes.txt"
    ).strip()


def _backup(address: str, repo: str) -> dict[str, object]:
    cloche_ok("backup", "run", address, "--repo", repo)
    listed = cloche_json("backup", "list", address, "--repo", repo)
    assert listed, f"no backup of {address} in {repo}"
    latest: dict[str, object] = listed[-1]
    return latest


def _ssh_banner(address: str) -> str:
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection((address, 22), timeout=5) as connection:
                return connection.recv(64).decode(errors="replace")
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _round_trip(owner: str, repo: str, kind: str) -> dict[str, object]:
    """Write files, back up, destroy, restore as new: same checksums, boots, answers on SSH."""
    source = f"{owner}/{kind}{unique_suffix()[:6]}"
    restored = f"{source}r"
    figures: dict[str, object] = {}
    made: list[str] = []  # backups this test took in the shared local repository
    try:
        cloche_ok("create", source, "--memory", "1GiB")
        cloche_ok(
            "exec",
            source,
            "--",
            "sh",
            "-c",
            "cd ~ && head -c 8388608 /dev/urandom > data.bin && echo hello > notes.txt && sync",
        )
        started = time.monotonic()
        first = _backup(source, repo)
        made.append(str(first["id"]))
        figures["first_seconds"] = round(time.monotonic() - started, 1)
        figures["first_added"] = first["data_added"]
        figures["total_bytes"] = first["total_bytes"]
        if kind == "local":
            # 1 MiB changes: the second backup adds far less than the first.
            cloche_ok(
                "exec",
                source,
                "--",
                "sh",
                "-c",
                "cd ~ && dd if=/dev/urandom of=data.bin bs=1M count=1 conv=notrunc "
                "status=none && sync",
            )
            second = _backup(source, repo)
            made.append(str(second["id"]))
            figures["second_added"] = second["data_added"]
            assert isinstance(first["data_added"], int)
            assert isinstance(second["data_added"], int)
            # Judged against the 8 MiB of random data, not the first backup's size, which
            # depends on what the repository already holds from other environments: the first
            # adds at least that data, the second (7 MiB of it unchanged) far less.
            random_bytes = 8 * 1024 * 1024
            assert first["data_added"] > random_bytes * 0.9
            assert second["data_added"] < random_bytes * 0.75
            backup = second
        else:
            backup = first
        expected = _checksums(source)
        original_keys = cloche_json("info", source)["host_keys"]
        cloche_ok("rm", source, "--yes")
        started = time.monotonic()
        cloche_ok("backup", "restore", str(backup["id"]), "--as-new", restored.split("/")[1])
        figures["restore_seconds"] = round(time.monotonic() - started, 1)
        assert _checksums(restored) == expected
        info = cloche_json("info", restored)
        assert info["state"] == "Running"
        assert _ssh_banner(info["address"]).startswith("SSH-2.0")
        assert info["host_keys"] and info["host_keys"] != original_keys
        if kind == "local":
            # A backup removed for good is gone from the list and cannot be restored.
            gone = made.pop()
            cloche_ok("backup", "rm", gone, "--repo", repo, "--yes")
            listed = cloche_json("backup", "list", "--repo", repo)
            assert gone not in [str(item["id"]) for item in listed]
            refused = cloche("backup", "restore", gone, "--as-new", "never", "--repo", repo)
            assert refused.returncode == 3 and f"no backup {gone}" in refused.stderr
        return figures
    finally:
        cloche("rm", source, "--yes")
        cloche("rm", restored, "--yes")
        if repo == "local":  # other repositories are test-made and dropped whole
            for backup_id in made:
                cloche("backup", "rm", backup_id, "--repo", repo, "--yes")


def _record(kind: str, figures: dict[str, object]) -> None:
    known = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    known[kind] = figures
    FIGURES.write_text(json.dumps(known, indent=2))


def test_local_round_trip_and_deduplication(owner: str) -> None:
    _record("local", _round_trip(owner, "local", "local"))


def test_sftp_round_trip(owner: str, sftp_target: tuple[str, str], repositories: list[str]) -> None:
    name = f"sftp{unique_suffix()[:6]}"
    repositories.append(name)
    url, command = sftp_target
    cloche_ok("backup", "repo", "add", name, url, "--sftp-command", command)
    _record("sftp", _round_trip(owner, name, "sftp"))


def test_s3_round_trip(owner: str, s3_url: str, repositories: list[str]) -> None:
    name = f"s3{unique_suffix()[:6]}"
    repositories.append(name)
    cloche_ok(
        "backup",
        "repo",
        "add",
        name,
        s3_url,
        "--s3-access-key",
        S3_KEYS[0],
        "--s3-secret-key",
        S3_KEYS[1],
    )
    listed = cloche_json("backup", "repo", "list")
    assert S3_KEYS[1] not in json.dumps(listed)
    _record("s3", _round_trip(owner, name, "s3"))


def test_check_reports_a_corrupted_pack_and_a_wrong_password_is_one_sentence(
    owner: str, repositories: list[str], tmp_path: Path
) -> None:
    name = f"damaged{unique_suffix()[:6]}"
    repositories.append(name)
    path = tmp_path / "repo"
    password = tmp_path / "password"
    password.write_text("right horse battery staple\n")
    cloche_ok("backup", "repo", "add", name, str(path), "--password-file", str(password))
    env = f"{owner}/chk{unique_suffix()[:6]}"
    try:
        cloche_ok("create", env, "--memory", "512MiB")
        cloche_ok("backup", "run", env, "--repo", name)
    finally:
        cloche("rm", env, "--yes")
    cloche_ok("backup", "check", "--repo", name, "--read-data")

    packs = sorted((path / "data").rglob("*"), key=lambda item: item.stat().st_size)
    pack = [item for item in packs if item.is_file()][-1]
    pack.chmod(0o600)
    with pack.open("r+b") as stream:
        stream.seek(pack.stat().st_size // 2)
        chunk = stream.read(64)
        stream.seek(pack.stat().st_size // 2)
        stream.write(bytes(byte ^ 0xFF for byte in chunk))
    damaged = cloche("backup", "check", "--repo", name, "--read-data")
    assert damaged.returncode != 0
    assert name in damaged.stderr and "damaged" in damaged.stderr, damaged.stderr
    assert "Traceback" not in damaged.stderr

    wrong = tmp_path / "wrong"
    wrong.write_text("not the password\n")
    other = f"wrong{unique_suffix()[:6]}"
    refused = cloche("backup", "repo", "add", other, str(path), "--password-file", str(wrong))
    assert refused.returncode != 0
    message = " ".join(refused.stderr.split())
    assert "password" in message and other in message, message
    assert "Traceback" not in refused.stderr
    assert message.count(". ") == 0, message  # one sentence
    assert other not in [repo["name"] for repo in cloche_json("backup", "repo", "list")]


def test_secrets_file_is_root_only_and_not_in_the_audit_log() -> None:
    secrets_file = Path("/var/lib/cloche/secrets/backup-repositories.json")
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    assert secrets_file.parent.stat().st_mode & 0o777 == 0o700
    stored = json.loads(secrets_file.read_text())["repositories"]
    audit = Path("/var/lib/cloche/audit.log").read_text()
    config = Path("/etc/cloche/config.yaml").read_text()
    for repo in stored.values():
        assert repo["password"] not in audit and repo["password"] not in config
