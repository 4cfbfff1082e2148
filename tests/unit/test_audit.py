"""The audit log: the pure hash chain and the file that holds it."""

from __future__ import annotations

import json
import stat
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from cloche.host.files import write_atomically
from cloche.model.audit import (
    GENESIS_HASH,
    AuditEvent,
    ChainHead,
    chain_hash,
    decode_line,
    encode_line,
    verify_lines,
)
from cloche.model.errors import HostFailure, Invalid
from cloche.store.audit import AuditLog

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _event(number: int, **changes: object) -> AuditEvent:
    fields: dict[str, object] = {
        "actor": "alice",
        "action": "created environment",
        "target": f"alice/env-{number}",
        "outcome": "succeeded",
        "details": {"image": "debian-12", "number": number},
        "time": START + timedelta(seconds=number),
    }
    fields.update(changes)
    return AuditEvent(**fields)  # type: ignore[arg-type]


def _chain(count: int) -> list[str]:
    lines, previous = [], GENESIS_HASH
    for number in range(1, count + 1):
        line, previous = encode_line(_event(number), previous, number)
        lines.append(line + "\n")
    return lines


def _write_log(tmp_path: Path, count: int) -> AuditLog:
    log = AuditLog(tmp_path / "audit.log", write_atomically)
    for number in range(1, count + 1):
        log.append(_event(number))
    return log


def _lines(log: AuditLog) -> list[str]:
    return log.path.read_text().splitlines(keepends=True)


# The pure chain ---------------------------------------------------------------------------


def test_an_encoded_line_is_canonical_json_linked_to_the_previous_hash() -> None:
    line, new_hash = encode_line(_event(1), GENESIS_HASH, 1)
    fields = json.loads(line)
    assert line == json.dumps(fields, sort_keys=True, separators=(",", ":"))
    assert fields["prev"] == GENESIS_HASH and fields["hash"] == new_hash
    assert fields["seq"] == 1
    assert fields["time"] == "2025-03-01T12:00:01.000000Z"
    assert fields["action"] == "created environment"
    event_only = {key: value for key, value in fields.items() if key not in ("prev", "hash")}
    canonical = json.dumps(event_only, sort_keys=True, separators=(",", ":"))
    assert new_hash == chain_hash(GENESIS_HASH, canonical)
    assert len(new_hash) == 64


def test_the_chain_round_trips() -> None:
    lines = _chain(5)
    for number, line in enumerate(lines, start=1):
        event, head = decode_line(line)
        assert event == _event(number)
        assert event.sequence == head.sequence == number
    assert verify_lines(lines).ok
    assert verify_lines(lines).count == 5


def test_events_are_normalized_to_utc_and_checked() -> None:
    paris = timezone(timedelta(hours=1))
    event = _event(1, time=datetime(2025, 3, 1, 13, 0, 1, tzinfo=paris))
    assert event.time == START + timedelta(seconds=1)
    assert event.time.tzinfo == UTC
    assert encode_line(event, GENESIS_HASH, 1) == encode_line(_event(1), GENESIS_HASH, 1)
    with pytest.raises(Invalid):
        _event(1, outcome="maybe")
    with pytest.raises(Invalid):
        _event(1, actor=" ")
    with pytest.raises(Invalid):
        _event(1, time=datetime(2025, 3, 1))
    with pytest.raises(Invalid, match="not plain JSON"):
        _event(1, details={"when": datetime.now(UTC)})


def test_an_event_made_now_has_the_current_time() -> None:
    event = AuditEvent(actor="root", action="added user", target="bob", outcome="succeeded")
    assert abs(datetime.now(UTC) - event.time) < timedelta(seconds=5)
    assert event.details == {}


def test_to_dict_gives_plain_json_values_with_the_sequence_once_logged() -> None:
    fresh = _event(1)
    assert fresh.sequence is None
    assert fresh.to_dict() == {
        "seq": None,
        "time": "2025-03-01T12:00:01.000000Z",
        "actor": "alice",
        "action": "created environment",
        "target": "alice/env-1",
        "outcome": "succeeded",
        "details": {"image": "debian-12", "number": 1},
    }
    logged, _ = decode_line(encode_line(fresh, GENESIS_HASH, 7)[0])
    assert logged.to_dict() == fresh.to_dict() | {"seq": 7}
    json.dumps(logged.to_dict())


def test_non_ascii_details_stay_on_one_ascii_line() -> None:
    line, _ = encode_line(_event(1, details={"comment": "Zoë\nnext"}), GENESIS_HASH, 1)
    assert line.isascii() and "\n" not in line
    event, _ = decode_line(line)
    assert event.details == {"comment": "Zoë\nnext"}


def test_an_empty_log_verifies() -> None:
    result = verify_lines([])
    assert (result.ok, result.count, result.first_bad_line) == (True, 0, None)


@pytest.mark.parametrize("line_number", [1, 4, 10])
def test_changing_any_byte_of_a_line_names_that_line(line_number: int) -> None:
    original = _chain(10)
    text = original[line_number - 1]
    # Every position: the event's fields, seq, prev, hash, braces and quotes.
    for position in range(len(text) - 1):
        lines = list(original)
        changed = chr(ord(text[position]) ^ 0x01)
        lines[line_number - 1] = text[:position] + changed + text[position + 1 :]
        result = verify_lines(lines)
        assert not result.ok, f"change at {position} went unnoticed"
        assert result.first_bad_line == line_number, (position, result.reason)
        assert result.count == line_number - 1


def test_re_hashing_a_changed_line_still_breaks_the_next_link() -> None:
    lines = _chain(5)
    forged, _ = encode_line(_event(3, actor="mallory"), json.loads(lines[1])["hash"], 3)
    lines[2] = forged + "\n"
    result = verify_lines(lines)
    assert (result.ok, result.first_bad_line) == (False, 4)


def test_lines_that_are_not_chain_lines_are_reported_not_raised() -> None:
    lines = _chain(3)
    for bad in ("[1, 2]\n", '{"seq": NaN}\n', "\x00\n", lines[0].replace("}", ',"x":1}')):
        result = verify_lines([*lines[:2], bad])
        assert (result.ok, result.first_bad_line, result.count) == (False, 3, 2)
    with pytest.raises(Invalid):
        _event(1, details={"ratio": float("nan")})


def test_removing_a_line_is_detected_at_its_place() -> None:
    lines = _chain(10)
    del lines[4]
    result = verify_lines(lines)
    assert (result.ok, result.first_bad_line) == (False, 5)
    assert "removed" in result.reason


def test_swapping_two_lines_is_detected_at_the_first_of_them() -> None:
    lines = _chain(10)
    lines[3], lines[6] = lines[6], lines[3]
    result = verify_lines(lines)
    assert (result.ok, result.first_bad_line) == (False, 4)


def test_inserting_or_duplicating_a_line_is_detected() -> None:
    lines = _chain(6)
    inserted = [*lines[:3], lines[2], *lines[3:]]
    assert verify_lines(inserted).first_bad_line == 4
    blank = [*lines[:3], "\n", *lines[3:]]
    assert verify_lines(blank).first_bad_line == 4
    foreign = [*lines[:3], _chain(4)[3], *lines[3:]]
    assert not verify_lines(foreign).ok


def test_cutting_the_end_is_detected_only_against_the_head() -> None:
    lines = _chain(10)
    head = ChainHead(10, json.loads(lines[-1])["hash"])
    assert verify_lines(lines, head).ok
    cut = lines[:8]
    assert verify_lines(cut).ok  # without the head, a shorter chain is still a chain
    result = verify_lines(cut, head)
    assert (result.ok, result.first_bad_line) == (False, 9)
    assert "end" in result.reason
    result = verify_lines([], head)
    assert (result.ok, result.first_bad_line) == (False, 1)


def test_a_head_one_line_behind_is_a_crash_not_tampering() -> None:
    lines = _chain(10)
    behind = ChainHead(9, json.loads(lines[8])["hash"])
    assert verify_lines(lines, behind).ok
    wrong = ChainHead(9, "f" * 64)
    result = verify_lines(lines, wrong)
    assert (result.ok, result.first_bad_line) == (False, 9)


# The file ---------------------------------------------------------------------------------


def test_append_creates_a_private_verifiable_log_with_a_head(tmp_path: Path) -> None:
    log = _write_log(tmp_path, 3)
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.head_path.stat().st_mode) == 0o600
    lines = _lines(log)
    assert json.loads(lines[0])["prev"] == GENESIS_HASH
    assert json.loads(log.head_path.read_text()) == {
        "seq": 3,
        "hash": json.loads(lines[-1])["hash"],
    }
    result = log.verify()
    assert (result.ok, result.count, result.first_bad_line) == (True, 3, None)


def test_read_returns_the_last_events_oldest_first(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log", write_atomically)
    assert log.read() == []
    for number in range(1, 6):
        log.append(_event(number))
    assert log.read() == [_event(number) for number in range(1, 6)]
    assert log.read(2) == [_event(4), _event(5)]
    assert [event.sequence for event in log.read(2)] == [4, 5]
    assert log.read(50) == log.read()
    assert log.read(0) == []


def test_read_finds_the_tail_of_a_log_larger_than_one_chunk(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log", write_atomically)
    for number in range(1, 301):
        log.append(_event(number, details={"padding": "x" * 400}))
    assert log.path.stat().st_size > 2 * 64 * 1024
    assert [event.target for event in log.read(3)] == [f"alice/env-{n}" for n in (298, 299, 300)]
    assert log.verify().ok


def test_verify_of_a_missing_log(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log", write_atomically)
    assert log.verify().ok
    log.append(_event(1))
    log.path.unlink()
    result = log.verify()
    assert (result.ok, result.first_bad_line) == (False, 1)


def test_a_changed_byte_in_the_file_is_found_on_its_line(tmp_path: Path) -> None:
    log = _write_log(tmp_path, 8)
    data = bytearray(log.path.read_bytes())
    line_starts = [0, *(index + 1 for index, byte in enumerate(data) if byte == ord("\n"))]
    data[line_starts[5] + 40] ^= 0x80  # no longer ASCII, not even UTF-8
    log.path.write_bytes(bytes(data))
    result = log.verify()
    assert (result.ok, result.first_bad_line) == (False, 6)


def test_removed_or_swapped_lines_in_the_file_are_found(tmp_path: Path) -> None:
    log = _write_log(tmp_path, 6)
    original = _lines(log)
    log.path.write_text("".join(original[:2] + original[3:]))
    assert log.verify().first_bad_line == 3
    log.path.write_text("".join([original[0], original[2], original[1], *original[3:]]))
    assert log.verify().first_bad_line == 2
    log.path.write_text("".join(original[:-1]))
    result = log.verify()
    assert (result.ok, result.first_bad_line) == (False, 6)
    log.head_path.unlink()
    result = log.verify()
    assert not result.ok and "head" in result.reason


def test_appending_after_the_end_was_cut_keeps_the_gap_visible(tmp_path: Path) -> None:
    log = _write_log(tmp_path, 5)
    log.path.write_text("".join(_lines(log)[:3]))
    log.append(_event(6))
    assert json.loads(_lines(log)[-1])["seq"] == 6
    result = log.verify()
    assert (result.ok, result.first_bad_line) == (False, 4)


def test_append_refuses_to_continue_an_unfinished_line(tmp_path: Path) -> None:
    log = _write_log(tmp_path, 2)
    with log.path.open("a") as stream:
        stream.write('{"action":"half')
    with pytest.raises(HostFailure, match="unfinished line"):
        log.append(_event(3))
    assert log.read() == [_event(1), _event(2)]


def test_follow_yields_the_last_events_then_new_ones(tmp_path: Path) -> None:
    log = _write_log(tmp_path, 3)
    events = log.follow(last=2, poll_seconds=0.01)
    assert next(events) == _event(2)
    assert next(events) == _event(3)
    appender = threading.Timer(0.05, log.append, args=(_event(4),))
    appender.start()
    assert next(events) == _event(4)
    appender.join()
    events.close()


def test_follow_waits_for_a_log_that_does_not_exist_yet(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log", write_atomically)
    events = log.follow(poll_seconds=0.01)

    def append_two() -> None:
        log.append(_event(1))
        log.append(_event(2))

    appender = threading.Timer(0.05, append_two)
    appender.start()
    assert [next(events), next(events)] == [_event(1), _event(2)]
    appender.join()
    events.close()


def test_follow_starts_over_when_the_log_is_replaced(tmp_path: Path) -> None:
    log = _write_log(tmp_path, 2)
    events = log.follow(poll_seconds=0.01)

    def rotate() -> None:
        log.path.rename(tmp_path / "audit.log.1")
        log.head_path.rename(tmp_path / "audit.log.head.1")
        log.append(_event(10))

    rotator = threading.Timer(0.05, rotate)
    rotator.start()
    assert next(events) == _event(10)
    rotator.join()
    events.close()


def test_concurrent_appends_from_four_threads_make_one_valid_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def append_many(thread_number: int) -> None:
        # Separate AuditLog objects, as separate processes would have: only flock orders them.
        log = AuditLog(path, write_atomically)
        try:
            start.wait()
            for index in range(50):
                log.append(_event(index, actor=f"thread-{thread_number}"))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=append_many, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    log = AuditLog(path, write_atomically)
    result = log.verify()
    assert (result.ok, result.count) == (True, 200), result.reason
    events = log.read()
    assert [json.loads(line)["seq"] for line in _lines(log)] == list(range(1, 201))
    for thread_number in range(4):
        mine = [event for event in events if event.actor == f"thread-{thread_number}"]
        assert [event.target for event in mine] == [f"alice/env-{index}" for index in range(50)]
