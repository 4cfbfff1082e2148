"""The ban store: a failed connection counts once, acceptance forgives it, bans are kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloche.model.bans import Ban, Failure
from cloche.model.errors import NotFound
from cloche.store.database import Database

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
A, B = "203.0.113.7", "2001:db8::9"


def test_a_connection_counts_once_from_its_first_failure(database: Database) -> None:
    bans = database.bans
    bans.record_outcomes([(A, 4000, True), (A, 4000, True), (A, 4001, True)], T0)
    bans.record_outcomes([(A, 4000, True), (B, 5000, True)], T0 + MINUTE)
    assert bans.failures(T0 - MINUTE) == [Failure(A, T0), Failure(A, T0), Failure(B, T0 + MINUTE)]
    assert bans.failures(T0) == [Failure(B, T0 + MINUTE)]


def test_an_accepted_connection_is_forgiven(database: Database) -> None:
    bans = database.bans
    bans.record_outcomes([(A, 4000, True), (A, 4001, True), (A, 4000, False)], T0)
    assert bans.failures(T0 - MINUTE) == [Failure(A, T0)]


def test_old_failures_and_one_address_s_are_forgotten(database: Database) -> None:
    bans = database.bans
    bans.record_outcomes([(A, 1, True), (B, 2, True)], T0)
    bans.record_outcomes([(A, 3, True), (B, 4, True)], T0 + MINUTE)
    assert bans.forget_failures(before=T0) == 2
    assert bans.forget_failures(address=B) == 1
    assert bans.failures(T0 - MINUTE) == [Failure(A, T0 + MINUTE)]


def test_bans_are_added_renewed_dropped_and_lifted(database: Database) -> None:
    bans = database.bans
    first = Ban(A, T0 + 60 * MINUTE, 10, T0)
    bans.record_outcomes([(A, 1, True), (B, 2, True)], T0)
    bans.change([first, Ban(B, T0 + MINUTE, 12, T0)], [])
    assert bans.list() == [Ban(B, T0 + MINUTE, 12, T0), first]
    # A ban answers its address's failures: they are gone with it.
    assert bans.failures(T0 - MINUTE) == []
    renewed = Ban(A, T0 + 120 * MINUTE, 11, T0 + MINUTE)
    bans.change([renewed], [B])
    assert bans.list() == [renewed]
    assert bans.remove(A) == renewed
    assert bans.list() == []
    with pytest.raises(NotFound, match=f"^{A} is not banned; 'cloche host bans' lists"):
        bans.remove(A)
