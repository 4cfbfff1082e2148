"""Parsing of what restic prints and of LXD exports (pure), against golden files."""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile
from pathlib import Path

import pytest

from cloche.model.backups import BackupRecord
from cloche.model.errors import Invalid
from cloche.render.lxd_export import backup_yaml, export_limits, instance_facts
from cloche.render.restic_output import (
    backed_up_environments,
    backup_rows,
    backup_summary,
    check_problem,
    matching_snapshot,
    parse_snapshots,
)
from tests.unit.golden import assert_golden_json

DATA = Path(__file__).parent / "data" / "backups"


def _export(members: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:") as archive:
        for name, data in members.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def _lxd_export() -> io.BytesIO:
    return _export(
        {
            "backup/index.yaml": (DATA / "export-index.yaml").read_bytes(),
            "backup/container/backup.yaml": (DATA / "export-backup.yaml").read_bytes(),
            "backup/container/rootfs/etc/hostname": b"web\n",
            "backup/container/rootfs/srv/backup.yaml": b"not: this one\n",
        }
    )


def test_a_backup_summary_is_read_past_status_lines_and_warnings() -> None:
    summary = backup_summary((DATA / "backup.jsonl").read_text())
    assert_golden_json(
        "backups/summary.json", {**dataclasses.asdict(summary), "short": summary.short_id}
    )
    with pytest.raises(Invalid, match="did not print a backup summary"):
        backup_summary('{"message_type":"status","percent_done":1}\n')


def test_snapshots_parse_oldest_first_with_short_ids() -> None:
    snapshots = parse_snapshots((DATA / "snapshots.json").read_text())
    assert_golden_json("backups/snapshots.json", [dataclasses.asdict(s) for s in snapshots])
    assert parse_snapshots("") == [] and parse_snapshots("null") == []
    with pytest.raises(Invalid, match="not JSON"):
        parse_snapshots("Fatal: oops")


def test_backup_rows_skip_foreign_snapshots_and_add_the_catalog_figures() -> None:
    snapshots = parse_snapshots((DATA / "snapshots.json").read_text())
    record = BackupRecord("local", "bbbb2222", "alice", "web", "2026-03-02", 1024, 4096, 1.5)
    rows = backup_rows("local", snapshots, {"bbbb2222": record})
    assert_golden_json("backups/rows.json", [dataclasses.asdict(row) for row in rows])
    assert backed_up_environments(snapshots) == [("alice", "web"), ("bob", "db")]


def test_a_backup_id_matches_a_prefix_or_the_short_id() -> None:
    snapshots = parse_snapshots((DATA / "snapshots.json").read_text())
    assert matching_snapshot(snapshots, "aaaa1111bbbb") is snapshots[0]
    assert matching_snapshot(snapshots, "bbbb2222") is snapshots[-1]
    assert matching_snapshot(snapshots, "0123abcd") is None


def test_check_names_the_damaged_pack() -> None:
    problems = {
        "damaged pack": check_problem(
            (DATA / "check-stderr.txt").read_text(), (DATA / "check-stdout.txt").read_text()
        ),
        "only a fatal line": check_problem("Fatal: unable to load index 12\n", "load indexes\n"),
        "no keyword": check_problem("", "first\nlast words\n"),
        "nothing": check_problem("\n \n", ""),
    }
    assert_golden_json("backups/check-problems.json", problems)


def test_an_export_gives_its_instance_limits_and_profile() -> None:
    facts = instance_facts(backup_yaml(_lxd_export()), "alice-web.tar")
    limits, profile = export_limits(facts)
    assert_golden_json(
        "backups/export-facts.json",
        {
            # YAML reads created_at as a datetime; the golden file keeps its text.
            "facts": json.loads(json.dumps(facts, default=str)),
            "limits": limits.describe(),
            "profile": profile,
        },
    )


def test_an_export_under_the_newer_instance_key_reads_the_same() -> None:
    text = (DATA / "export-backup.yaml").read_text().replace("container:", "instance:", 1)
    facts = instance_facts(text.encode(), "alice-web.tar")
    assert export_limits(facts)[1] == "docker"


def test_what_is_not_an_export_is_refused_in_one_sentence() -> None:
    not_export = _export({"etc/hostname": b"web\n"})
    with pytest.raises(Invalid, match=r"holds no backup\.yaml; it is not an LXD export"):
        instance_facts(backup_yaml(not_export), "x.tar")
    with pytest.raises(Invalid, match=r"damaged backup\.yaml"):
        instance_facts(b"container: [unclosed", "x.tar")
    with pytest.raises(Invalid, match="lacks the environment's limits"):
        export_limits({"config": {"limits.cpu": "2"}, "profiles": ["standard"]})
    facts = instance_facts(backup_yaml(_lxd_export()), "x.tar")
    with pytest.raises(Invalid, match="profile 'default' is not one of cloche's"):
        export_limits({**facts, "profiles": ["default"]})
