"""restic command lines, environments, tags, retention and output parsing (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloche.host import secrets
from cloche.model.backups import (
    Repository,
    RepositoryView,
    Retention,
    check_backup_id,
    check_repository_name,
    is_missing_repository,
    is_wrong_password,
    repository_kind,
    restic_argv,
    restic_environment,
)
from cloche.model.errors import Invalid, NotFound
from cloche.render.restic import (
    backup_arguments,
    dump_arguments,
    forget_arguments,
    parse_tags,
    snapshot_name,
)
from cloche.render.restic_output import backup_summary, parse_snapshots

S3 = Repository(
    name="offsite",
    url="s3:http://127.0.0.1:9000/cloche",
    password="pw",
    s3_access_key="AK",
    s3_secret_key="SK",
)


def test_repository_kinds() -> None:
    assert repository_kind("/srv/backups") == "local"
    assert repository_kind("sftp:backup@10.0.0.2:/srv/restic") == "sftp"
    assert repository_kind("s3:http://127.0.0.1:9000/bucket") == "s3"
    for bad in (
        "relative/path",
        "sftp:host",
        "s3:bucket",
        "rest:http://x/",
        "sftp:backup@10.0.0.2:/srv/restic\n",
        "s3:http://127.0.0.1:9000/bucket\n",
    ):
        with pytest.raises(Invalid):
            repository_kind(bad)


def test_names_and_ids_are_checked() -> None:
    assert check_repository_name("offsite-1") == "offsite-1"
    assert check_backup_id("0123abcd") == "0123abcd"
    for bad in ("Offsite", "1x", "a b", "", "offsite\n"):
        with pytest.raises(Invalid):
            check_repository_name(bad)
    for bad in ("xyz", "0123", "../etc", "0123abcd\n"):
        with pytest.raises(Invalid):
            check_backup_id(bad)


def test_secrets_go_to_the_environment_never_argv() -> None:
    environment = restic_environment(S3, {"PATH": "/bin", "SECRET_OTHER": "x"}, "/cache")
    assert environment == {
        "PATH": "/bin",
        "RESTIC_REPOSITORY": S3.url,
        "RESTIC_PASSWORD": "pw",
        "RESTIC_CACHE_DIR": "/cache",
        "AWS_ACCESS_KEY_ID": "AK",
        "AWS_SECRET_ACCESS_KEY": "SK",
    }
    argv = restic_argv(S3, "snapshots", "--json")
    assert argv == ["restic", "snapshots", "--json"]
    assert "pw" not in repr(S3) and "SK" not in repr(S3)
    assert S3.describe() == RepositoryView(name="offsite", kind="s3", url=S3.url)


def test_sftp_command_is_a_restic_option() -> None:
    repo = Repository("far", "sftp:b@h:/r", "pw", sftp_command="ssh -i k b@h -s sftp")
    assert restic_argv(repo, "check") == [
        "restic",
        "-o",
        "sftp.command=ssh -i k b@h -s sftp",
        "check",
    ]


def test_backup_arguments_tag_user_env_and_snapshot() -> None:
    assert backup_arguments("alice", "web", "backup-20240101t000000z") == [
        "backup",
        "--stdin",
        "--stdin-filename",
        "alice-web.tar",
        "--json",
        "--tag",
        "cloche",
        "--tag",
        "user=alice",
        "--tag",
        "env=web",
        "--tag",
        "snapshot=backup-20240101t000000z",
    ]
    assert dump_arguments("0123abcd", "alice", "web") == ["dump", "0123abcd", "/alice-web.tar"]


def test_tags_parse_back() -> None:
    tags = parse_tags(["cloche", "user=al-ice", "env=web-1", "snapshot=backup-x"])
    assert tags is not None
    assert (tags.user, tags.env, tags.snapshot) == ("al-ice", "web-1", "backup-x")
    assert parse_tags(["user=a", "env=b"]) is None
    assert parse_tags(["cloche", "user=a"]) is None


def test_snapshot_name_is_utc() -> None:
    moment = datetime(2024, 1, 31, 23, 59, 59, tzinfo=UTC)
    assert snapshot_name(moment) == "backup-20240131t235959z"


def test_retention_is_per_environment() -> None:
    arguments = forget_arguments(Retention(7, 4, 6), "alice", "web")
    assert arguments[:3] == ["forget", "--tag", "cloche,user=alice,env=web"]
    assert arguments[arguments.index("--keep-daily") + 1] == "7"
    assert arguments[arguments.index("--keep-weekly") + 1] == "4"
    assert arguments[arguments.index("--keep-monthly") + 1] == "6"
    assert "--prune" not in arguments  # one prune per repository, after every forget


def test_backup_summary_and_snapshots_parse() -> None:
    output = "\n".join(
        [
            json.dumps({"message_type": "status", "percent_done": 0.5}),
            json.dumps(
                {"message_type": "summary", "snapshot_id": "abcdef0123", "data_added": 1234}
            ),
        ]
    )
    assert backup_summary(output).data_added == 1234
    with pytest.raises(Invalid):
        backup_summary("not json")
    listed = parse_snapshots(
        json.dumps(
            [
                {"id": "b" * 64, "short_id": "bbbbbbbb", "time": "2024-02-01", "tags": ["cloche"]},
                {"id": "a" * 64, "time": "2024-01-01", "paths": ["/a.tar"]},
            ]
        )
    )
    assert [snapshot.short_id for snapshot in listed] == ["aaaaaaaa", "bbbbbbbb"]


def test_restic_refusals_are_recognised() -> None:
    assert is_wrong_password("Fatal: wrong password or no key found\n")
    assert is_missing_repository("Fatal: unable to open config file: stat /x/config: no such")
    assert not is_wrong_password("Fatal: unable to open config file")


def test_secrets_file_is_private_and_idempotent(tmp_path: Path) -> None:
    repo = Repository("local", str(tmp_path / "repo"), secrets.new_password())
    assert secrets.save_repository(tmp_path, repo) is True
    assert secrets.save_repository(tmp_path, repo) is False
    path = secrets.secrets_path(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert secrets.get_repository(tmp_path, "local") == repo
    with pytest.raises(NotFound):
        secrets.get_repository(tmp_path, "other")
    assert secrets.remove_repository(tmp_path, "local") is True
    assert secrets.load_repositories(tmp_path) == {}
