"""Patterns worth an auditor's look, computed from the access records over a period.

Four patterns, each a list of findings with counts (never a personal id), each finding
with the search that shows its records (`search`, the parameters of `/kiem-tra` and
`/audit/events`):

- a busy officer: an officer (by pseudonym) who read more people in the period than
  `peer_factor` times the median of the other officers of the same organisation, and
  at least `min_reads` people (an officer without peers in the period is not compared);
- reads outside working hours (Vietnam's time, see `gateway.records._search`): per
  officer, or per client for records without an officer, from `min_outside` records;
- repeated refusals: per client and per officer, records refused or withheld as
  `SUBJECT_NOT_IN_CASE` or `CONSENT_REQUIRED`, from `min_refusals` (a summary of a
  minute's refusals counts as the refusals it stands for);
- one person read by many organisations: people whose records in the period come from
  at least `min_orgs` distinct organisations. This needs the private subject index; a
  person is shown only as an opaque handle (`subject_handle`: an HMAC of the id under
  the gateway's pseudonym key, context `pattern`) and counts. The server finds the
  person of a handle again by recomputing the period's candidates (`subject_of_handle`):
  it keeps no state.

A "read" is an access record of a procedure request: neither refused, nor only about
the schema, nor the record saying another was not delivered. Busy officers are compared
on people read (one record of a batch of 50 people is 50 reads); the other patterns
count records, as the search that shows them does. Every count is computed in SQL on
both backends (`GROUP BY`); only refusals' summaries are read row by row, which the
refusal summaries themselves bound (one per client, code and minute).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.instants import format_instant
from gateway.records._envelope import read_envelope
from gateway.records._recorder import UNDELIVERED
from gateway.records._search import REFUSED_PREFIX, outside_hours
from gateway.storage import event_decisions, event_subjects, events

__all__ = [
    "REFUSAL_CODES",
    "BusyOfficer",
    "OutsideHours",
    "PatternSettings",
    "Patterns",
    "Refusals",
    "SharedSubject",
    "patterns",
    "subject_handle",
    "subject_of_handle",
]

REFUSAL_CODES: Final = ("SUBJECT_NOT_IN_CASE", "CONSENT_REQUIRED")
"""The codes of the repeated-refusals pattern."""
_INTROSPECTION: Final = "introspection"
_MAX_FINDINGS: Final = 200
"""Most findings of one pattern listed (the rest are counted)."""


@dataclass(frozen=True, slots=True)
class PatternSettings:
    """The thresholds of the patterns (settings `GATEWAY_AUDIT_PATTERN_...`)."""

    peer_factor: float = 5.0
    min_reads: int = 50
    min_outside: int = 10
    min_refusals: int = 10
    min_orgs: int = 3
    work_hours: tuple[int, int] = (7, 17)

    @classmethod
    def of(cls, settings: Any) -> PatternSettings:
        """The thresholds of the gateway's settings."""
        return cls(
            peer_factor=settings.audit_pattern_peer_factor,
            min_reads=settings.audit_pattern_min_reads,
            min_outside=settings.audit_pattern_min_outside,
            min_refusals=settings.audit_pattern_min_refusals,
            min_orgs=settings.audit_pattern_min_orgs,
            work_hours=(settings.audit_work_start, settings.audit_work_end),
        )


@dataclass(frozen=True, slots=True)
class BusyOfficer:
    """An officer who read far more people than their organisation's other officers."""

    organisation: str
    officer: str
    """The officer's pseudonym."""
    reads: int
    requests: int
    peers: int
    peers_median: float
    search: dict[str, str]


@dataclass(frozen=True, slots=True)
class OutsideHours:
    """Records outside working hours: of an officer, or of a client without officers."""

    organisation: str | None
    officer: str | None
    client: str | None
    records: int
    search: dict[str, str]


@dataclass(frozen=True, slots=True)
class Refusals:
    """Records refused or withheld for one client or one officer, by code."""

    kind: str
    """`client` or `officer`."""
    client: str | None
    organisation: str | None
    officer: str | None
    total: int
    codes: dict[str, int]
    searches: dict[str, dict[str, str]]
    """The search of each code's records."""


@dataclass(frozen=True, slots=True)
class SharedSubject:
    """A person read by many organisations, by handle: never the person's id."""

    handle: str
    organisations: int
    records: int


@dataclass(frozen=True, slots=True)
class Patterns:
    """Every pattern's findings over `[start, end)`, and how many were left off."""

    start: datetime.datetime
    end: datetime.datetime
    busy: list[BusyOfficer] = field(default_factory=list)
    outside: list[OutsideHours] = field(default_factory=list)
    refusals: list[Refusals] = field(default_factory=list)
    shared: list[SharedSubject] = field(default_factory=list)
    left_off: dict[str, int] = field(default_factory=dict)

    def findings(self) -> int:
        """How many findings in all (what the page's own record says it showed)."""
        return len(self.busy) + len(self.outside) + len(self.refusals) + len(self.shared)


def _reads() -> list[sa.ColumnElement[bool]]:
    """Access records of procedure requests (what a read is, above)."""
    return [
        events.c.type == "access",
        events.c.outcome.not_in((_INTROSPECTION, UNDELIVERED)),
        sa.not_(events.c.outcome.startswith(REFUSED_PREFIX, autoescape=True)),
    ]


def _period(start: datetime.datetime, end: datetime.datetime) -> dict[str, str]:
    return {"from": format_instant(start), "to": format_instant(end)}


def subject_handle(key: bytes, subject: str) -> str:
    """The opaque handle of a person in the patterns: HMAC-SHA-256, hex, 32 characters."""
    return hmac.new(key, f"pattern\x00{subject}".encode(), hashlib.sha256).hexdigest()[:32]


async def patterns(
    conn: AsyncConnection,
    start: datetime.datetime,
    end: datetime.datetime,
    *,
    settings: PatternSettings,
    pseudonym_key: bytes,
) -> Patterns:
    """Every pattern over `[start, end)`."""
    period = _period(start, end)
    busy = await _busy(conn, start, end, settings, period)
    outside = await _outside(conn, start, end, settings, period)
    refusals = await _refusals(conn, start, end, settings, period)
    shared = [
        SharedSubject(subject_handle(pseudonym_key, subject), orgs, records)
        for subject, orgs, records in await _shared(conn, start, end, settings.min_orgs)
    ]
    sizes = {"busy": len(busy), "outside": len(outside), "refusals": len(refusals)}
    sizes["shared"] = len(shared)
    return Patterns(
        start,
        end,
        busy=busy[:_MAX_FINDINGS],
        outside=outside[:_MAX_FINDINGS],
        refusals=refusals[:_MAX_FINDINGS],
        shared=shared[:_MAX_FINDINGS],
        left_off={k: n - _MAX_FINDINGS for k, n in sizes.items() if n > _MAX_FINDINGS},
    )


async def _busy(
    conn: AsyncConnection,
    start: datetime.datetime,
    end: datetime.datetime,
    settings: PatternSettings,
    period: Mapping[str, str],
) -> list[BusyOfficer]:
    query = (
        sa.select(
            events.c.organisation,
            events.c.officer,
            sa.func.count(sa.distinct(events.c.id)).label("requests"),
            sa.func.count(event_subjects.c.event_id).label("reads"),
        )
        .select_from(events)
        .outerjoin(event_subjects, event_subjects.c.event_id == events.c.id)
        .where(
            events.c.ts >= start,
            events.c.ts < end,
            events.c.officer.is_not(None),
            events.c.organisation.is_not(None),
            *_reads(),
        )
        .group_by(events.c.organisation, events.c.officer)
    )
    by_org: dict[str, list[Any]] = {}
    for row in await conn.execute(query):
        by_org.setdefault(row.organisation, []).append(row)
    found = []
    for organisation, rows in by_org.items():
        for row in rows:
            peers = [other.reads for other in rows if other.officer != row.officer]
            if not peers or row.reads < settings.min_reads:
                continue
            median = statistics.median(peers)
            if row.reads > settings.peer_factor * median:
                found.append(
                    BusyOfficer(
                        organisation=organisation,
                        officer=row.officer,
                        reads=row.reads,
                        requests=row.requests,
                        peers=len(peers),
                        peers_median=median,
                        search={
                            **period,
                            "organisation": organisation,
                            "officerPseudonym": row.officer,
                        },
                    )
                )
    return sorted(found, key=lambda b: (-b.reads, b.organisation, b.officer))


async def _outside(
    conn: AsyncConnection,
    start: datetime.datetime,
    end: datetime.datetime,
    settings: PatternSettings,
    period: Mapping[str, str],
) -> list[OutsideHours]:
    query = (
        sa.select(
            events.c.organisation,
            events.c.officer,
            events.c.client_id,
            sa.func.count().label("records"),
        )
        .where(
            events.c.ts >= start,
            events.c.ts < end,
            outside_hours(events.c.ts, settings.work_hours),
            *_reads(),
        )
        .group_by(events.c.organisation, events.c.officer, events.c.client_id)
    )
    officers: dict[tuple[str | None, str], int] = {}
    clients: dict[str, tuple[str | None, int]] = {}
    for row in await conn.execute(query):
        if row.officer is not None:
            key = (row.organisation, row.officer)
            officers[key] = officers.get(key, 0) + row.records
        elif row.client_id is not None:
            _, before = clients.get(row.client_id, (None, 0))
            clients[row.client_id] = (row.organisation, before + row.records)
    outside = {"hours": "outside"}
    found = [
        OutsideHours(
            organisation,
            officer,
            None,
            count,
            {
                **period,
                **({"organisation": organisation} if organisation else {}),
                "officerPseudonym": officer,
                **outside,
            },
        )
        for (organisation, officer), count in officers.items()
        if count >= settings.min_outside
    ]
    found.extend(
        OutsideHours(organisation, None, client, count, {**period, "client": client, **outside})
        for client, (organisation, count) in clients.items()
        if count >= settings.min_outside
    )
    return sorted(found, key=lambda o: (-o.records, o.organisation or "", o.officer or ""))


async def _refusals(
    conn: AsyncConnection,
    start: datetime.datetime,
    end: datetime.datetime,
    settings: PatternSettings,
    period: Mapping[str, str],
) -> list[Refusals]:
    # (kind, client or officer key) -> code -> records
    counts: dict[tuple[str, str | None, str | None, str | None], dict[str, int]] = {}

    def add(client: str | None, org: str | None, officer: str | None, code: str, n: int) -> None:
        if client is not None:
            per = counts.setdefault(("client", client, org, None), {})
            per[code] = per.get(code, 0) + n
        if officer is not None:
            per = counts.setdefault(("officer", None, org, officer), {})
            per[code] = per.get(code, 0) + n

    withheld = (
        sa.select(
            events.c.client_id,
            events.c.organisation,
            events.c.officer,
            event_decisions.c.decision,
            sa.func.count().label("records"),
        )
        .select_from(event_decisions)
        .join(events, events.c.id == event_decisions.c.event_id)
        .where(
            event_decisions.c.decision.in_(REFUSAL_CODES),
            event_decisions.c.ts >= start,
            event_decisions.c.ts < end,
            events.c.type == "access",
        )
        .group_by(
            events.c.client_id, events.c.organisation, events.c.officer, event_decisions.c.decision
        )
    )
    for row in await conn.execute(withheld):
        add(row.client_id, row.organisation, row.officer, row.decision, row.records)
    refused = sa.select(
        events.c.client_id,
        events.c.organisation,
        events.c.officer,
        events.c.outcome,
        events.c.envelope,
    ).where(
        events.c.type == "access",
        events.c.ts >= start,
        events.c.ts < end,
        events.c.outcome.in_([f"{REFUSED_PREFIX}{code}" for code in REFUSAL_CODES]),
    )
    for row in await conn.execute(refused):
        summary = read_envelope(row.envelope).get("refused")
        n = summary if isinstance(summary, int) and summary > 0 else 1
        code = row.outcome.removeprefix(REFUSED_PREFIX)
        add(row.client_id, row.organisation, row.officer, code, n)
    found = []
    for (kind, client, org, officer), codes in counts.items():
        total = sum(codes.values())
        if total < settings.min_refusals:
            continue
        who = (
            {"client": client}
            if kind == "client" and client is not None
            else {**({"organisation": org} if org else {}), "officerPseudonym": officer or ""}
        )
        found.append(
            Refusals(
                kind=kind,
                client=client,
                organisation=org,
                officer=officer,
                total=total,
                codes=dict(sorted(codes.items())),
                searches={code: {**period, **who, "code": code} for code in sorted(codes)},
            )
        )
    return sorted(found, key=lambda r: (-r.total, r.kind, r.client or "", r.officer or ""))


def _shared_query(
    start: datetime.datetime, end: datetime.datetime, min_orgs: int
) -> sa.Select[Any]:
    orgs = sa.func.count(sa.distinct(events.c.organisation))
    return (
        sa.select(
            event_subjects.c.subject,
            orgs.label("organisations"),
            sa.func.count(sa.distinct(events.c.id)).label("records"),
        )
        .select_from(event_subjects)
        .join(events, events.c.id == event_subjects.c.event_id)
        .where(events.c.ts >= start, events.c.ts < end, *_reads())
        .group_by(event_subjects.c.subject)
        .having(orgs >= min_orgs)
    )


async def _shared(
    conn: AsyncConnection, start: datetime.datetime, end: datetime.datetime, min_orgs: int
) -> list[tuple[str, int, int]]:
    """(person, organisations, records) of people read by `min_orgs` organisations or more.

    The person's id stays in this process: callers show a handle.
    """
    rows = (await conn.execute(_shared_query(start, end, min_orgs))).all()
    ordered = sorted(rows, key=lambda r: (-r.organisations, -r.records))
    return [(r.subject, r.organisations, r.records) for r in ordered]


async def subject_of_handle(
    conn: AsyncConnection,
    start: datetime.datetime,
    end: datetime.datetime,
    handle: str,
    *,
    min_orgs: int,
    pseudonym_key: bytes,
) -> str | None:
    """The person behind `handle` among the period's flagged people, else `None`."""
    for subject, _, _ in await _shared(conn, start, end, min_orgs):
        if hmac.compare_digest(subject_handle(pseudonym_key, subject), handle):
            return subject
    return None
