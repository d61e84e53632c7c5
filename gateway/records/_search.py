"""Searching the access records: auditors' search and export, citizens' own accesses.

A search is a time range and any of: client, organisation, officer, procedure, case,
subject, event type and decision code; also an officer's pseudonym as envelopes hold it
(`officerPseudonym`: what auditors see), reads outside working hours (`hours=outside`:
in Vietnam's time, UTC+7, before `audit_work_start` or from `audit_work_end` on, or on a
Saturday or Sunday; computed in SQL on both backends, `local_hour` and `local_weekday`)
and an error code (`code`: records with a decision of that code, or refused with it).
Officers and cases are searched by their pseudonyms (the auditor gives the id or case
number; the gateway pseudonymises it), a subject through the private subject index.
Results come newest first, a page at a time, with an opaque cursor for the next page;
every filter but `hours` and `code`'s refusals reads an index on `(column, ts)`, so a
page costs the same on a million records as on a thousand (those two scan the time
range's records).

A result's outcome is what happened: a record that a later one marks as not delivered
(its answer never left) has the outcome `undelivered`; its envelope, as hashed into the
log, still says what was written then.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
import unicodedata
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from gateway.errors import InvalidArgument
from gateway.identifiers import parse_identifier
from gateway.instants import format_instant, parse_instant
from gateway.records._recorder import UNDELIVERED, pseudonyms, undelivered
from gateway.storage import EVENT_TYPES, event_decisions, event_subjects, events, log_leaves
from policies import DossierStatus

__all__ = [
    "DECISION_CODES",
    "DOSSIER_STATUSES",
    "HOURS",
    "REFUSED_PREFIX",
    "Page",
    "SearchFilter",
    "all_results",
    "decode_cursor",
    "encode_cursor",
    "is_outside_hours",
    "local_hour",
    "local_weekday",
    "outside_hours",
    "page_limit",
    "search_page",
    "time_range",
    "with_code",
    "with_delivery",
]

DOSSIER_STATUSES = tuple(status.value for status in DossierStatus)
"""The statuses a case's dossier may have had (`dossierStatus`)."""

DECISION_CODES = (
    "ALLOWED_BY_LAW",
    "ALLOWED_BY_CONSENT",
    "CLIENT_NOT_AUTHORISED",
    "SUBJECT_NOT_IN_CASE",
    "PURPOSE_NOT_ALLOWED",
    "CONSENT_REQUIRED",
)

HOURS = ("outside",)
"""The values of the `hours` filter."""
REFUSED_PREFIX = "rejected:"
"""The outcome of a refused request: this prefix and the refusal's code."""
_PSEUDONYM = re.compile(r"[0-9a-f]{32}")
_CODE = re.compile(r"[A-Z][A-Z_]{1,39}")
_VIETNAM_OFFSET = 7
"""Vietnam's time is UTC+7 all year (no daylight saving)."""


class local_hour(FunctionElement[int]):  # noqa: N801 - a SQL function's name
    """The hour (0-23) of a stored instant in Vietnam's time, in SQL."""

    type = sa.Integer()
    inherit_cache = True
    name = "local_hour"


class local_weekday(FunctionElement[int]):  # noqa: N801 - a SQL function's name
    """The day of the week of a stored instant in Vietnam's time (0: Sunday ... 6), in SQL."""

    type = sa.Integer()
    inherit_cache = True
    name = "local_weekday"


@compiles(local_hour, "sqlite")
def _sqlite_hour(element: local_hour, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps UTC text ("YYYY-MM-DD HH:MM:SS"); strftime shifts it.
    inner = compiler.process(element.clauses, **kw)
    return f"CAST(strftime('%H', {inner}, '+{_VIETNAM_OFFSET} hours') AS INTEGER)"


@compiles(local_weekday, "sqlite")
def _sqlite_weekday(element: local_weekday, compiler: SQLCompiler, **kw: Any) -> str:
    inner = compiler.process(element.clauses, **kw)
    return f"CAST(strftime('%w', {inner}, '+{_VIETNAM_OFFSET} hours') AS INTEGER)"


@compiles(local_hour, "postgresql")
def _postgresql_hour(element: local_hour, compiler: SQLCompiler, **kw: Any) -> str:
    # A timestamptz as UTC wall time, shifted: independent of the session's time zone.
    inner = compiler.process(element.clauses, **kw)
    return (
        f"CAST(EXTRACT(HOUR FROM ({inner} AT TIME ZONE 'UTC') "
        f"+ INTERVAL '{_VIETNAM_OFFSET} hours') AS INTEGER)"
    )


@compiles(local_weekday, "postgresql")
def _postgresql_weekday(element: local_weekday, compiler: SQLCompiler, **kw: Any) -> str:
    inner = compiler.process(element.clauses, **kw)
    return (
        f"CAST(EXTRACT(DOW FROM ({inner} AT TIME ZONE 'UTC') "
        f"+ INTERVAL '{_VIETNAM_OFFSET} hours') AS INTEGER)"
    )


def outside_hours(column: sa.ColumnElement[Any], work: tuple[int, int]) -> sa.ColumnElement[bool]:
    """Whether the instant in `column` is outside working hours `work` (start, end hour).

    In Vietnam's time: before `start`, at or after `end`, or on a Saturday or Sunday.
    """
    start, end = work
    return sa.or_(
        local_hour(column) < start,
        local_hour(column) >= end,
        local_weekday(column).in_((0, 6)),
    )


def is_outside_hours(instant: datetime.datetime, work: tuple[int, int]) -> bool:
    """`outside_hours` of one instant, in Python (for tests and pages)."""
    local = instant.astimezone(datetime.timezone(datetime.timedelta(hours=_VIETNAM_OFFSET)))
    start, end = work
    return local.hour < start or local.hour >= end or local.weekday() >= 5


def with_code(
    code: str, start: datetime.datetime, end: datetime.datetime
) -> sa.ColumnElement[bool]:
    """Whether an event carries error code `code`: a decision of it, or a refusal with it.

    Decisions are read through their index `(decision, ts)` within `[start, end)`.
    """
    decided = sa.select(event_decisions.c.event_id).where(
        event_decisions.c.decision == code,
        event_decisions.c.ts >= start,
        event_decisions.c.ts < end,
    )
    return sa.or_(events.c.id.in_(decided), events.c.outcome == f"{REFUSED_PREFIX}{code}")


def time_range(
    start: str | None, end: str | None, *, max_days: int | None
) -> tuple[datetime.datetime, datetime.datetime]:
    """`[from, to)` of a query string: `to` defaults to now, `from` to 30 days before.

    A date in `to` means the end of that day in Vietnam (`from=D&to=D` is day D).
    """
    until = (
        parse_instant(end, "to", end_of_day=True) if end else datetime.datetime.now(datetime.UTC)
    )
    default_days = 30 if max_days is None else min(30, max_days)
    since = parse_instant(start, "from") if start else until - datetime.timedelta(days=default_days)
    if since >= until:
        raise InvalidArgument("`from` must be before `to`.", argument="from")
    if max_days is not None and until - since > datetime.timedelta(days=max_days):
        raise InvalidArgument(
            f"A search spans at most {max_days} days; narrow `from` and `to`.",
            argument="from",
            maxDays=max_days,
        )
    return since, until


def _nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value)


def page_limit(limit: int, cap: int) -> int:
    """`limit`, if within the page cap (else 400 naming it)."""
    if limit > cap:
        raise InvalidArgument(f"`limit` is at most {cap}.", argument="limit", max=cap)
    return limit


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """What to look for. `officer` and `case` are pseudonyms already."""

    start: datetime.datetime
    end: datetime.datetime
    client: str | None = None
    organisation: str | None = None
    officer: tuple[str, str] | None = None
    """The officer's pseudonym, and its form in records written before kinds."""
    procedure: str | None = None
    case: tuple[str, str] | None = None
    """The case number's pseudonym, and its form in records written before kinds."""
    subject: str | None = field(default=None, repr=False)
    type: str | None = None
    decision: str | None = None
    types: tuple[str, ...] = ()
    """Any of these event types (for the citizen's view)."""
    visible_at: datetime.datetime | None = None
    """For a citizen: leave out accesses hidden from the subject at this instant."""
    officer_pseudonym: str | None = None
    """An officer's pseudonym as envelopes hold it (what auditors know of an officer)."""
    hours: str | None = None
    """`outside`: only records outside working hours (`work_hours`)."""
    work_hours: tuple[int, int] = (7, 17)
    """Working hours in Vietnam's time: the first hour in, the first hour out."""
    code: str | None = None
    """Only records with a decision of this code, or refused with it."""
    dossier_status: str | None = None
    """Only accesses whose case's dossier had this status (`DONE`, `CANCELLED`, ...)."""

    @classmethod
    def build(
        cls,
        *,
        start: str | None,
        end: str | None,
        max_days: int,
        pseudonym_key: bytes,
        officer: str | None = None,
        case: str | None = None,
        subject: str | None = None,
        type: str | None = None,
        decision: str | None = None,
        officer_pseudonym: str | None = None,
        hours: str | None = None,
        work_hours: tuple[int, int] = (7, 17),
        code: str | None = None,
        dossier_status: str | None = None,
        **plain: str | None,
    ) -> SearchFilter:
        """Check the parameters of a search (400 with the argument named)."""
        since, until = time_range(start, end, max_days=max_days)
        if officer_pseudonym is not None and not _PSEUDONYM.fullmatch(officer_pseudonym):
            raise InvalidArgument(
                "An officer's pseudonym is 32 lowercase hexadecimal digits.",
                argument="officerPseudonym",
            )
        if hours is not None and hours not in HOURS:
            raise InvalidArgument("`hours` is `outside`.", argument="hours", known=list(HOURS))
        if code is not None and not _CODE.fullmatch(code):
            raise InvalidArgument(
                "An error code is 2 to 40 capital letters and underscores.", argument="code"
            )
        if dossier_status is not None and dossier_status not in DOSSIER_STATUSES:
            raise InvalidArgument(
                "Unknown dossier status.", argument="dossierStatus", known=list(DOSSIER_STATUSES)
            )
        if type is not None and type not in EVENT_TYPES:
            raise InvalidArgument("Unknown event type.", argument="type", known=list(EVENT_TYPES))
        if decision is not None and decision not in DECISION_CODES:
            raise InvalidArgument(
                "Unknown decision code.", argument="decision", known=list(DECISION_CODES)
            )
        for name, value in plain.items():
            if value is not None and not 0 < len(value) <= 256:
                raise InvalidArgument(f"`{name}` is 1 to 256 characters.", argument=name)
        return cls(
            start=since,
            end=until,
            # As the purpose keeps them (NFC), so that any spelling of a name finds it;
            # records written before pseudonyms had kinds are found by their older form.
            officer=None
            if officer is None
            else pseudonyms(pseudonym_key, _nfc(officer), "officer"),
            case=None if case is None else pseudonyms(pseudonym_key, _nfc(case), "case"),
            subject=None if subject is None else parse_identifier(subject, argument="subject"),
            type=type,
            decision=decision,
            officer_pseudonym=officer_pseudonym,
            hours=hours,
            work_hours=work_hours,
            code=code,
            dossier_status=dossier_status,
            **plain,  # type: ignore[arg-type]
        )

    def described(self) -> dict[str, Any]:
        """The filter as recorded in an `auditor_search` envelope: no personal data."""
        out: dict[str, Any] = {"from": format_instant(self.start), "to": format_instant(self.end)}
        for name in ("client", "organisation", "officer", "procedure", "case", "type", "decision"):
            value = getattr(self, name)
            if isinstance(value, tuple):
                value = value[0]  # the pseudonym; its older form says nothing more
            if value is not None:
                out[name] = value
        if self.subject is not None:
            out["subject"] = "given (committed to in subjectCommitments)"
        if self.officer_pseudonym is not None:
            out["officerPseudonym"] = self.officer_pseudonym
        if self.hours is not None:
            out["hours"] = self.hours
            out["workHours"] = f"{self.work_hours[0]:02d}-{self.work_hours[1]:02d}"
        if self.code is not None:
            out["code"] = self.code
        if self.dossier_status is not None:
            out["dossierStatus"] = self.dossier_status
        return out

    def order(self) -> tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]]:
        """The (time, id) columns to sort and page by.

        With a decision, those of the decision index (the same values): the database
        then reads `(decision, ts)` in order and stops at the page's end, instead of
        sorting every match of a common decision.
        """
        if self.decision is not None:
            return event_decisions.c.ts, event_decisions.c.event_id
        return events.c.ts, events.c.id

    def query(self) -> sa.Select[Any]:
        """The matching events with their leaf index, unordered."""
        query = (
            sa.select(
                events.c.id,
                events.c.type,
                events.c.ts,
                events.c.client_id,
                events.c.organisation,
                events.c.procedure,
                events.c.outcome,
                events.c.hidden_until,
                events.c.envelope,
                events.c.envelope_hash,
                log_leaves.c.idx.label("leaf_index"),
                log_leaves.c.leaf,
            )
            .select_from(events)
            .outerjoin(log_leaves, log_leaves.c.event_id == events.c.id)
            .where(events.c.ts >= self.start, events.c.ts < self.end)
        )
        for column, value in (
            (events.c.client_id, self.client),
            (events.c.organisation, self.organisation),
            (events.c.procedure, self.procedure),
            (events.c.type, self.type),
        ):
            if value is not None:
                query = query.where(column == value)
        for column, forms in ((events.c.officer, self.officer), (events.c.case_ref, self.case)):
            if forms is not None:
                query = query.where(column.in_(forms))
        if self.subject is not None:
            query = query.join(
                event_subjects,
                sa.and_(
                    event_subjects.c.event_id == events.c.id,
                    event_subjects.c.subject == self.subject,
                ),
            )
        if self.decision is not None:
            query = query.join(
                event_decisions,
                sa.and_(
                    event_decisions.c.event_id == events.c.id,
                    event_decisions.c.decision == self.decision,
                    # The same range on the index's own copy of the time, so that a
                    # rare decision is found through `(decision, ts)`.
                    event_decisions.c.ts >= self.start,
                    event_decisions.c.ts < self.end,
                ),
            )
        if self.types:
            query = query.where(events.c.type.in_(self.types))
        if self.officer_pseudonym is not None:
            query = query.where(events.c.officer == self.officer_pseudonym)
        if self.hours == "outside":
            query = query.where(outside_hours(events.c.ts, self.work_hours))
        if self.code is not None:
            query = query.where(with_code(self.code, self.start, self.end))
        if self.dossier_status is not None:
            query = query.where(events.c.dossier_status == self.dossier_status)
        if self.visible_at is not None:
            query = query.where(
                sa.or_(events.c.hidden_until.is_(None), events.c.hidden_until <= self.visible_at)
            )
        return query


@dataclass(frozen=True, slots=True)
class Page:
    """One page of results, newest first, and the cursor of the next (if any)."""

    rows: Sequence[Any]
    next_cursor: str | None


def encode_cursor(row: Any) -> str:
    """The cursor after `row`: where the next page starts."""
    return base64.urlsafe_b64encode(orjson.dumps([row.ts.isoformat(), row.id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime.datetime, str]:
    """The position a cursor stands for; INVALID_ARGUMENT when it was not ours."""
    try:
        ts, event_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        instant = datetime.datetime.fromisoformat(ts)
        if not isinstance(event_id, str) or instant.tzinfo is None:
            raise ValueError
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidArgument(
            "The cursor is not one this gateway gave.", argument="cursor"
        ) from None
    return instant.astimezone(datetime.UTC), event_id


async def search_page(
    conn: AsyncConnection, flt: SearchFilter, *, limit: int, cursor: str | None = None
) -> Page:
    """One page of `flt`'s results, newest first."""
    ts_column, id_column = flt.order()
    query = flt.query().order_by(ts_column.desc(), id_column.desc()).limit(limit + 1)
    if cursor is not None:
        ts, event_id = decode_cursor(cursor)
        query = query.where(sa.tuple_(ts_column, id_column) < sa.tuple_(ts, event_id))
    rows = (await conn.execute(query)).all()
    more = len(rows) > limit
    shown = await with_delivery(conn, rows[:limit])
    return Page(shown, encode_cursor(shown[-1]) if more and shown else None)


async def with_delivery(conn: AsyncConnection, rows: Sequence[Any]) -> list[Any]:
    """`rows`, those that a later record marks as not delivered with that outcome."""
    unsent = await undelivered(conn, [row.id for row in rows])
    return [
        SimpleNamespace(**{**row._asdict(), "outcome": UNDELIVERED}) if row.id in unsent else row
        for row in rows
    ]


async def all_results(
    engine: AsyncEngine, flt: SearchFilter, *, page: int = 500
) -> AsyncIterator[Sequence[Any]]:
    """Every result of `flt`, oldest first, a page at a time (for exports).

    Each page is read on a connection of its own, returned before the page is handed
    on: a slow reader of a long export holds no pooled connection nor snapshot while
    it reads. Pages follow (time, id), so records added meanwhile never shift them.
    """
    after: tuple[datetime.datetime, str] | None = None
    ts_column, id_column = flt.order()
    while True:
        query = flt.query().order_by(ts_column, id_column).limit(page)
        if after is not None:
            query = query.where(sa.tuple_(ts_column, id_column) > sa.tuple_(*after))
        async with engine.connect() as conn:
            rows = await with_delivery(conn, (await conn.execute(query)).all())
        if not rows:
            return
        yield rows
        last = rows[-1]
        after = (last.ts, last.id)
        if len(rows) < page:
            return
