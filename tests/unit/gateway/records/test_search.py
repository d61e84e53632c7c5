"""Search parameters: instants, subjects, the filter and its record, cursors."""

from __future__ import annotations

import base64
import datetime
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from gateway.errors import InvalidArgument, InvalidIdentifier
from gateway.identifiers import parse_identifier
from gateway.instants import format_instant, parse_instant
from gateway.records import DECISION_CODES, SearchFilter, decode_cursor, encode_cursor, pseudonym
from gateway.storage import EVENT_TYPES

UTC = datetime.UTC
KEY = b"k" * 32
PID = "001099012345"
ENTERPRISE = "0100109106"
BRANCH = "0100109106-001"
HOUSEHOLD = "HO123456"


def _at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime.datetime:
    return datetime.datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def _build(**given: Any) -> SearchFilter:
    arguments: dict[str, Any] = {
        "start": "2026-01-01",
        "end": "2026-01-31",
        "max_days": 366,
        "pseudonym_key": KEY,
    }
    arguments.update(given)
    return SearchFilter.build(**arguments)


# -- instants ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "instant"),
    [
        ("2026-01-31", _at(2026, 1, 30, 17)),  # 00:00 in Vietnam is 17:00 UTC the day before
        ("2024-02-29", _at(2024, 2, 28, 17)),
        ("2026-01-01", _at(2025, 12, 31, 17)),
        ("2026-01-31T08:00:00+07:00", _at(2026, 1, 31, 1)),
        ("2026-01-31T08:00:00Z", _at(2026, 1, 31, 8)),
        ("2026-01-31T08:00:00.250-05:00", _at(2026, 1, 31, 13, 0, 0, 250000)),
        ("2026-01-31T23:30:00+00:00", _at(2026, 1, 31, 23, 30)),
    ],
)
def test_instants_are_read_as_utc(value: str, instant: datetime.datetime) -> None:
    parsed = parse_instant(value, "from")
    assert parsed == instant
    assert parsed.utcoffset() == datetime.timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-31T08:00:00",  # no offset: whose 08:00?
        "2026-01-31 08:00",
        "yesterday",
        "",
        "2026-13-01",
        "2026-02-30",
        "31/01/2026",
        "2026-01-31T25:00:00+07:00",
        # At the calendar's edges (ranges are reckoned from them in days): no overflow.
        "9999-12-31",
        "0001-01-01",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "1899-12-30",
    ],
)
@pytest.mark.parametrize("end_of_day", [False, True])
def test_instants_without_an_offset_or_not_instants_are_refused(
    value: str, end_of_day: bool
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_instant(value, "to", end_of_day=end_of_day)
    assert caught.value.code == "INVALID_ARGUMENT"
    assert caught.value.detail == {"argument": "to"}
    assert caught.value.message.startswith("`to` is a date (2026-01-31) or a date-time")


# -- subjects ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [PID, ENTERPRISE, BRANCH, HOUSEHOLD, "ho-so-7"])
def test_subjects_of_each_kind_are_accepted_as_given(value: str) -> None:
    assert parse_identifier(value, argument="subject") == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "00109901234",  # 11 digits
        "0010990123456",  # 13 digits, not a branch
        "0100109107",  # a tax code with a wrong check digit
        "0100109106-000",
        "HO 123",
        "x" * 65,
        "\uff10" * 12,  # full-width digits
    ],
)
def test_malformed_subjects_are_refused_without_repeating_them(value: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        parse_identifier(value, argument="subject")
    assert caught.value.code == "INVALID_IDENTIFIER"
    assert caught.value.detail == {"argument": "subject"}
    if value:
        assert value not in caught.value.message


# -- the filter -------------------------------------------------------------------------


def test_a_filter_reads_its_range_and_pseudonymises_officer_and_case() -> None:
    flt = _build(
        end="2026-01-31T12:00:00+07:00",
        officer="officer-7",
        case="HS-2026/15",
        subject=PID,
        type="access",
        decision="CONSENT_REQUIRED",
        client="VN/GOV/CAHN/investigation",
        organisation="Hanoi City Police",
        procedure="1.004222",
    )
    assert (flt.start, flt.end) == (_at(2025, 12, 31, 17), _at(2026, 1, 31, 5))
    # The pseudonym of its kind, and the form records written before kinds hold.
    assert flt.officer == (pseudonym(KEY, "officer-7", "officer"), pseudonym(KEY, "officer-7"))
    assert flt.case == (pseudonym(KEY, "HS-2026/15", "case"), pseudonym(KEY, "HS-2026/15"))
    assert {len(p) for p in (*flt.officer, *flt.case)} == {32}
    assert flt.officer[0] != pseudonym(b"another key" * 3, "officer-7", "officer")
    assert flt.subject == PID
    assert (flt.type, flt.decision) == ("access", "CONSENT_REQUIRED")
    assert (flt.client, flt.organisation, flt.procedure) == (
        "VN/GOV/CAHN/investigation",
        "Hanoi City Police",
        "1.004222",
    )
    assert flt.types == ()
    assert flt.visible_at is None


def test_the_recorded_filter_holds_pseudonyms_and_never_the_subject() -> None:
    flt = _build(officer="officer-7", case="HS-2026/15", subject=PID, type="access")
    described = flt.described()
    assert described == {
        "from": "2025-12-31T17:00:00Z",
        "to": "2026-01-31T17:00:00Z",
        "officer": pseudonym(KEY, "officer-7", "officer"),
        "case": pseudonym(KEY, "HS-2026/15", "case"),
        "type": "access",
        "subject": "given (committed to in subjectCommitments)",
    }
    shown = orjson.dumps(described).decode()
    for secret in (PID, "officer-7", "HS-2026/15"):
        assert secret not in shown
    assert PID not in repr(flt)
    assert "officer-7" not in repr(flt)


def test_a_filter_without_options_describes_only_its_range() -> None:
    assert _build().described() == {"from": "2025-12-31T17:00:00Z", "to": "2026-01-31T17:00:00Z"}


def test_without_a_range_the_last_30_days_are_searched() -> None:
    before = datetime.datetime.now(UTC)
    flt = _build(start=None, end=None)
    after = datetime.datetime.now(UTC)
    assert before <= flt.end <= after
    assert flt.end - flt.start == datetime.timedelta(days=30)


def test_without_from_the_30_days_before_to_are_searched() -> None:
    flt = _build(start=None, end="2026-03-01T00:00:00Z")
    assert (flt.start, flt.end) == (_at(2026, 1, 30), _at(2026, 3, 1))


def test_a_range_of_exactly_max_days_is_allowed() -> None:
    flt = _build(start="2026-01-01", end="2026-01-07", max_days=7)  # through the 7th
    assert flt.end - flt.start == datetime.timedelta(days=7)


def test_a_range_over_max_days_is_refused_with_the_limit() -> None:
    with pytest.raises(InvalidArgument) as caught:
        _build(start="2026-01-01", end="2026-01-08T00:00:00.000001+07:00", max_days=7)
    assert caught.value.detail == {"argument": "from", "maxDays": 7}
    assert caught.value.message == "A search spans at most 7 days; narrow `from` and `to`."


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-01-08T00:00:00+07:00", "2026-01-07T17:00:00Z"),  # the same instant
        ("2026-01-10", "2026-01-08"),
        ("2026-01-09T00:00:00+07:00", "2026-01-08"),  # the end of the 8th
    ],
)
def test_from_must_come_before_to(start: str, end: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        _build(start=start, end=end)
    assert caught.value.detail == {"argument": "from"}
    assert caught.value.message == "`from` must be before `to`."


def test_a_date_in_to_means_the_whole_day_in_vietnam() -> None:
    flt = _build(start="2026-12-06", end="2026-12-06")
    assert format_instant(flt.start) == "2026-12-05T17:00:00Z"
    assert format_instant(flt.end) == "2026-12-06T17:00:00Z"


def test_a_date_time_in_to_is_exact() -> None:
    flt = _build(start="2026-12-06", end="2026-12-06T06:30:00+07:00")
    assert format_instant(flt.end) == "2026-12-05T23:30:00Z"


def test_a_date_in_from_is_the_start_of_that_day_in_vietnam() -> None:
    flt = _build(start="2026-12-06", end="2026-12-07T00:00:00Z")
    assert format_instant(flt.start) == "2026-12-05T17:00:00Z"


@pytest.mark.parametrize(("argument", "name"), [("start", "from"), ("end", "to")])
def test_a_bad_instant_names_its_query_parameter(argument: str, name: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        _build(**{argument: "2026-01-31T08:00:00"})
    assert caught.value.detail == {"argument": name}


def test_an_unknown_event_type_is_refused_with_the_known_ones() -> None:
    with pytest.raises(InvalidArgument) as caught:
        _build(type="read")
    assert caught.value.detail == {"argument": "type", "known": list(EVENT_TYPES)}


@pytest.mark.parametrize("decision", ["ALLOWED", "allowed_by_law", ""])
def test_an_unknown_decision_is_refused_with_the_known_ones(decision: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        _build(decision=decision)
    assert caught.value.detail == {"argument": "decision", "known": list(DECISION_CODES)}


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_every_event_type_is_searchable(kind: str) -> None:
    assert _build(type=kind).type == kind


def test_a_malformed_subject_is_refused() -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        _build(subject="12345")
    assert caught.value.detail == {"argument": "subject"}


@pytest.mark.parametrize("name", ["client", "organisation", "procedure"])
@pytest.mark.parametrize("value", ["", "x" * 257])
def test_plain_filters_are_1_to_256_characters(name: str, value: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        _build(**{name: value})
    assert caught.value.detail == {"argument": name}
    assert getattr(_build(**{name: "x" * 256}), name) == "x" * 256


# -- cursors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ts",
    [
        _at(2026, 1, 31, 8, 0, 0, 123456),
        datetime.datetime(
            2026, 1, 31, 15, 0, 0, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=7))
        ),
    ],
    ids=["utc", "utc+7"],
)
def test_cursors_round_trip_to_the_same_position(ts: datetime.datetime) -> None:
    cursor = encode_cursor(SimpleNamespace(ts=ts, id="4f2c" * 8))
    assert "=" not in cursor
    assert cursor.isascii()
    instant, event_id = decode_cursor(cursor)
    assert (instant, event_id) == (_at(2026, 1, 31, 8, 0, 0, 123456), "4f2c" * 8)
    assert instant.utcoffset() == datetime.timedelta(0)


def _b64(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!!",
        "\u00e9t\u00e9",
        _b64(b"\xff\xfe"),
        _b64(b"not json"),
        _b64(b"42"),
        _b64(b"[]"),
        _b64(b'["2026-01-31T08:00:00+00:00"]'),
        _b64(b'["2026-01-31T08:00:00+00:00", "abc", "more"]'),
        _b64(b'["2026-01-31T08:00:00", "abc"]'),  # no offset
        _b64(b'["2026-01-31T08:00:00+00:00", 17]'),  # the id is not a string
        _b64(b'[20260131, "abc"]'),
        _b64(b'["yesterday", "abc"]'),
    ],
)
def test_foreign_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_cursor(cursor)
    assert caught.value.detail == {"argument": "cursor"}
    assert caught.value.message == "The cursor is not one this gateway gave."


def test_an_officer_or_case_in_any_unicode_spelling_finds_the_same_pseudonym() -> None:
    import unicodedata

    composed, decomposed = "Nguyễn Văn An", unicodedata.normalize("NFD", "Nguyễn Văn An")
    one = _build(officer=composed, case=f"HS-{composed}")
    other = _build(officer=decomposed, case=f"HS-{decomposed}")
    assert (one.officer, one.case) == (other.officer, other.case)


def test_the_same_text_as_officer_and_as_case_has_two_pseudonyms() -> None:
    flt = _build(officer="HS-7", case="HS-7")
    assert flt.officer is not None
    assert flt.case is not None
    assert flt.officer[0] != flt.case[0]
    # Records written before kinds were used are still found, by their older form.
    assert flt.officer[1] == flt.case[1] == pseudonym(KEY, "HS-7")
