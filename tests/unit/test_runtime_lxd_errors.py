"""LXD's refusals as cloche's errors: by HTTP status first, LXD's sentence where it says more."""

from __future__ import annotations

import pytest

from cloche.model.errors import (
    ClocheError,
    Conflict,
    HostFailure,
    Invalid,
    NotFound,
    QuotaExceeded,
)
from cloche.runtime.lxd_errors import (
    OperationFailed,
    classify,
    is_busy,
    lxd_status,
    lxd_text,
    translate,
)
from tests.unit.lxd_doubles import FakeResponse, refusal

QUOTA = (
    'Failed checking if instance creation allowed: Reached maximum aggregate value "8" for '
    '"limits.cpu" in project "cloche-a"'
)


class ShapedLikePylxd(Exception):
    """Not pylxd's class: only its shape (a response with status_code and json())."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.response = FakeResponse({"type": "error", "error": text}, status)


@pytest.mark.parametrize(
    ("status", "text", "kind"),
    [
        # The status decides where LXD's code says what happened.
        (404, "Instance not found", NotFound),
        (404, "Failed to fetch instance", NotFound),
        (409, "This instance already exists", Conflict),
        (409, "Snapshot is locked", Conflict),
        # 400, 403 and 500 say little: a known sentence wins, the status is the fallback.
        (400, "Invalid config: Unknown configuration key: foo", Invalid),
        (403, "Forbidden", Invalid),
        (500, "Failed to create the storage volume", HostFailure),
        (500, QUOTA, QuotaExceeded),
        (400, QUOTA, QuotaExceeded),
        (400, "Only empty projects can be removed", Conflict),
        (400, "Profile is currently in use", Conflict),
        (400, "Instance is not running", Conflict),
        (400, '"limits.cpu" is too low: current total is "6"', Conflict),
        (500, "Storage volume not found", NotFound),
    ],
)
def test_status_first_then_lxd_s_words(status: int, text: str, kind: type[ClocheError]) -> None:
    for error in (refusal(status, text), ShapedLikePylxd(status, text)):
        assert lxd_status(error) == status
        translated = translate(error, "create 'web'", "cloche-a")
        assert type(translated) is kind, (status, text, type(error).__name__)
        assert str(translated).endswith(".")
        assert "cloche-a" in str(translated)


def test_a_status_that_decides_is_not_overruled_by_the_words() -> None:
    # A 404 whose sentence happens to hold words of a Conflict rule is still a NotFound.
    assert classify(404, "Instance is not running or was never there")[0] is NotFound
    # ... but a rule of the same class lends its advice.
    kind, advice, _ = classify(409, 'This "instances" entry already exists')
    assert (kind, advice) == (Conflict, "choose another name")


def test_quota_refusals_quote_lxd_s_reason_without_its_prefix() -> None:
    message = str(translate(refusal(500, QUOTA), "create 'web'", "cloche-a"))
    assert "Failed checking" not in message
    assert "Reached maximum aggregate value" in message
    assert "ask an admin for a larger quota" in message


def test_a_failed_operation_has_no_status_so_its_text_decides() -> None:
    assert lxd_status(OperationFailed("Instance not found")) is None
    assert type(translate(OperationFailed("Instance not found"), "start 'web'")) is NotFound
    unknown = translate(OperationFailed("Failed to run: boom"), "start 'web'", "cloche-a")
    assert type(unknown) is HostFailure
    assert str(unknown) == "LXD refused to start 'web' in project cloche-a: Failed to run: boom."


def test_a_200_answer_that_reports_an_error_uses_lxd_s_error_code() -> None:
    error = ShapedLikePylxd(200, "Instance not found")
    error.response = FakeResponse({"type": "error", "error_code": 404, "error": "x"}, 200)
    assert lxd_status(error) == 404
    error.response = FakeResponse("not a dict", 200)
    assert lxd_status(error) is None


def test_cloche_errors_pass_through_and_texts_are_one_line() -> None:
    original = Invalid("Give a name.")
    assert translate(original, "create 'web'") is original
    assert lxd_text(OperationFailed("two\n  lines.")) == "two lines"
    assert lxd_text(OperationFailed("")) == "OperationFailed"
    assert is_busy(OperationFailed('Instance is busy running a "stop" operation'))
    assert not is_busy(refusal(409, "already exists"))
