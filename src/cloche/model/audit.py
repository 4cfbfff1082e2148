"""Audit events and the hash chain that links them, as pure functions over lines of text.

Each line of the log is canonical JSON (sorted keys, no spaces, ASCII only) holding one event,
its sequence number `seq` (1, 2, 3, ...), the previous line's hash `prev` (64 zeros for the
first line) and its own `hash` = sha256(prev + "\\n" + canonical JSON of the event and seq).

What verify_lines detects, naming the first bad line:
- any changed, added or removed byte inside a line (the line is no longer canonical JSON, or its
  hash no longer matches, or its `prev` no longer matches the line before);
- a removed, inserted, duplicated or reordered line anywhere (sequence numbers and `prev` links
  break at the first line out of place);
- lines removed from the end, or the whole log emptied, only when given the head (sequence and
  hash of the last line) recorded elsewhere when the line was written.

What it cannot detect: anyone able to write the log can recompute every hash after a change (the
chain has no secret), so a rewritten log with a matching rewritten head passes; so do events
appended by someone other than cloche. Anchor the head somewhere that writer cannot reach
(another host, a printed record) to defend against that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeAlias, get_args

from cloche.model.errors import Invalid

JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | Mapping[str, JsonValue] | None"

Outcome = Literal["succeeded", "failed"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
GENESIS_HASH: Final = "0" * 64
_EVENT_FIELDS: Final = frozenset({"time", "actor", "action", "target", "outcome", "details"})
_LINE_FIELDS: Final = _EVENT_FIELDS | {"seq", "prev", "hash"}


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class AuditEvent:
    """Who did what to which thing, when, and whether it worked."""

    actor: str
    action: str  # past tense: "created environment"
    target: str
    outcome: Outcome
    details: Mapping[str, JsonValue] = field(default_factory=dict, hash=False)
    time: datetime = field(default_factory=_utc_now)
    # The event's line number in the log, known once it is read back from one; not part of
    # what the event is, so an event equals itself before and after it is logged.
    sequence: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("actor", "action", "target"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise Invalid(f"An audit event needs a non-empty {name}; say who or what it was.")
        if self.outcome not in OUTCOMES:
            raise Invalid(
                f"{self.outcome!r} is not an audit outcome; use one of {', '.join(OUTCOMES)}."
            )
        if self.time.utcoffset() is None:
            raise Invalid(f"The audit time {self.time!r} has no time zone; give it in UTC.")
        # One representation per instant, so that equal events encode to equal lines.
        object.__setattr__(self, "time", self.time.astimezone(UTC))
        # A copy, so that the caller changing its dict later cannot change the event; checked
        # here, so that a bad event fails where it is made rather than when it is logged.
        object.__setattr__(self, "details", dict(self.details))
        try:
            _canonical(self.details)
        except (TypeError, ValueError) as error:
            raise Invalid(
                f"The details of audit event {self.action!r} are not plain JSON ({error}); "
                "pass only text, numbers, booleans, lists and mappings."
            ) from None

    def to_dict(self) -> dict[str, JsonValue]:
        """The event as plain JSON values: time as ISO-8601 UTC text, seq once it is logged."""
        return {
            "seq": self.sequence,
            "time": _time_text(self.time),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class ChainHead:
    """The sequence number and hash of the last line of a log (sequence 0: an empty log)."""

    sequence: int
    hash: str


GENESIS: Final = ChainHead(0, GENESIS_HASH)


@dataclass(frozen=True)
class VerifyResult:
    """The verdict on a log: ok, how many lines checked out, and the first bad line if any."""

    ok: bool
    count: int
    first_bad_line: int | None
    reason: str


def _canonical(value: Mapping[str, Any]) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def _time_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def chain_hash(previous_hash: str, canonical_event_json: str) -> str:
    """The sha256 (hex) that links an event, in canonical JSON, to the hash before it."""
    return hashlib.sha256(f"{previous_hash}\n{canonical_event_json}".encode()).hexdigest()


def _event_fields(event: AuditEvent, sequence: int) -> dict[str, Any]:
    return {
        "seq": sequence,
        "time": _time_text(event.time),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "outcome": event.outcome,
        "details": event.details,
    }


def encode_line(event: AuditEvent, previous_hash: str, sequence: int) -> tuple[str, str]:
    """The log line (no newline) for event as line number sequence, and its hash."""
    try:
        canonical_event = _canonical(_event_fields(event, sequence))
    except (TypeError, ValueError) as error:
        raise Invalid(
            f"The details of audit event {event.action!r} are not plain JSON ({error}); "
            "pass only text, numbers, booleans, lists and mappings."
        ) from None
    new_hash = chain_hash(previous_hash, canonical_event)
    fields = json.loads(canonical_event)
    fields["prev"] = previous_hash
    fields["hash"] = new_hash
    return _canonical(fields), new_hash


def _parse(line: str) -> dict[str, Any]:
    text = line.removesuffix("\n")
    try:
        fields = json.loads(text)
    except ValueError:
        raise Invalid("it is not JSON") from None
    if not isinstance(fields, dict) or set(fields) != _LINE_FIELDS:
        raise Invalid(f"it does not hold exactly the fields {', '.join(sorted(_LINE_FIELDS))}")
    try:
        canonical = _canonical(fields)
    except ValueError:  # NaN or Infinity: json.loads reads them, canonical JSON has none
        raise Invalid("it holds a number JSON does not allow") from None
    if canonical != text:
        raise Invalid("it is not in canonical form (bytes were changed)")
    sequence = fields["seq"]
    if isinstance(sequence, bool) or not isinstance(sequence, int):
        raise Invalid("its seq is not a whole number")
    for name in ("prev", "hash"):
        if not isinstance(fields[name], str):
            raise Invalid(f"its {name} is not text")
    return fields


def _event(fields: Mapping[str, Any]) -> AuditEvent:
    try:
        moment = datetime.fromisoformat(fields["time"])
    except (TypeError, ValueError):
        raise Invalid("its time is not an ISO-8601 time") from None
    details = fields["details"]
    if not isinstance(details, dict):
        raise Invalid("its details are not a mapping")
    return AuditEvent(
        actor=fields["actor"],
        action=fields["action"],
        target=fields["target"],
        outcome=fields["outcome"],
        details=details,
        time=moment,
        sequence=fields["seq"],
    )


def decode_line(line: str) -> tuple[AuditEvent, ChainHead]:
    """The event on one log line and the chain head after it; Invalid if it is malformed."""
    try:
        fields = _parse(line)
        return _event(fields), ChainHead(fields["seq"], fields["hash"])
    except Invalid as error:
        raise Invalid(f"The audit line is damaged: {error}; run 'cloche audit verify'.") from None


def _follow(number: int, line: str, previous: ChainHead) -> ChainHead:
    """The head after line number `number`; Invalid saying why it does not follow previous."""
    try:
        fields = _parse(line)
        _event(fields)
    except Invalid as error:
        raise Invalid(f"line {number} is damaged: {error}.") from None
    expected = previous.sequence + 1
    if fields["seq"] != expected:
        raise Invalid(
            f"line {number} has sequence number {fields['seq']} where {expected} was expected: "
            "lines were removed, inserted or reordered."
        )
    if fields["prev"] != previous.hash:
        raise Invalid(f"line {number} does not link to the line before it: it was changed.")
    event_fields = {key: value for key, value in fields.items() if key not in ("prev", "hash")}
    if chain_hash(previous.hash, _canonical(event_fields)) != fields["hash"]:
        raise Invalid(f"line {number} was changed after it was written.")
    return ChainHead(fields["seq"], fields["hash"])


def verify_lines(lines: Iterable[str], head: ChainHead | None = None) -> VerifyResult:
    """Check every line's form, sequence, link and hash, and the end against head if given."""
    previous = GENESIS
    hash_at_head: str | None = None
    number = 0
    for number, line in enumerate(lines, start=1):
        try:
            previous = _follow(number, line, previous)
        except Invalid as error:
            return VerifyResult(False, number - 1, number, str(error))
        if head is not None and previous.sequence == head.sequence:
            hash_at_head = previous.hash
    if head is not None and head.sequence > previous.sequence:
        return VerifyResult(
            False,
            number,
            number + 1,
            f"the log ends after {previous.sequence} events but {head.sequence} were written: "
            "lines were removed from its end.",
        )
    # A crash between writing a line and recording the head leaves the head one line behind;
    # harmless as long as the line the head names is still the same line.
    if head is not None and head.sequence > 0 and hash_at_head != head.hash:
        return VerifyResult(
            False,
            number,
            head.sequence,
            f"line {head.sequence} is not the line that was written there: the log was "
            "rewritten from that line on.",
        )
    return VerifyResult(True, number, None, f"{number} events verified.")
