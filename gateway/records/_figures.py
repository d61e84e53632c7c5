"""Figures for operators: what the gateway served, refused, and spared citizens.

Per procedure and agency over a period: requests, fields served, denials by code (the
requests that had a field withheld with that code), refused requests by code, consents
asked, granted, denied and revoked, and papers avoided (for each subject of a served
request, the catalogue's `papers_replaced` whose fields were all served). They are
read from the access records, so they agree with the log; Prometheus counters count
the same as they happen, by the same definitions:

- a procedure request is an access record of a request that was admitted and asked
  for data: neither refused (`rejected:<code>`) nor only about the schema
  (`introspection`, the query page's schema lookups);
- a refused request is one whose signature verified and was refused, by its code; a
  summary record of refusals (`refused`) counts as that many;
- a request whose answer never left (a later record marks it `undelivered`: its
  caller was refused because recording outlived its wait, or was cancelled) is still
  a request, with its denials, but served nothing and spared no paper. The Prometheus
  counters never counted it: they count once the record is committed in time.
"""

from __future__ import annotations

import datetime
import functools
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.records._envelope import EnvelopeBody, decision_codes, read_envelope
from gateway.records._recorder import UNDELIVERED
from gateway.storage import clients, event_decisions, events, read_snapshot

__all__ = [
    "count_access",
    "count_consent",
    "count_refusal",
    "daily_figures",
    "figures",
    "is_procedure_request",
]

_BY_AGENCY = ["procedure", "organisation"]
ACCESSES = Counter(
    "gateway_accesses_total",
    "Procedure requests: admitted GraphQL requests that asked for data (not introspection).",
    _BY_AGENCY,
)
REFUSALS = Counter(
    "gateway_requests_refused_total",
    "Signed requests refused after their signature verified, by refusal code.",
    [*_BY_AGENCY, "code"],
)
FIELDS_SERVED = Counter(
    "gateway_fields_served_total", "Fields served with a value, per subject.", _BY_AGENCY
)
DENIALS = Counter(
    "gateway_denials_total",
    "Requests that had a field withheld, by decision code (as in the stats).",
    [*_BY_AGENCY, "code"],
)
PAPERS_AVOIDED = Counter(
    "gateway_papers_avoided_total",
    "Papers a citizen did not bring: all the fields replacing them were served.",
    _BY_AGENCY,
)
CONSENT_EVENTS = Counter(
    "gateway_consent_events_total",
    "Consent requests and answers (requested, approved, denied, revoked, expired).",
    ["procedure", "action"],
)
_ALLOWED = ("ALLOWED_BY_LAW", "ALLOWED_BY_CONSENT")


INTROSPECTION = "introspection"
"""The outcome of a request that only asked about the schema."""
_REFUSED = "rejected:"


def is_procedure_request(outcome: str) -> bool:
    """Whether an access record with this outcome counts as a procedure request."""
    return outcome not in (INTROSPECTION, UNDELIVERED) and not outcome.startswith(_REFUSED)


def count_refusal(procedure: str | None, organisation: str | None, code: str) -> None:
    """Count a refused request (recorded in full, or to be summed up in a summary)."""
    REFUSALS.labels(procedure or "", organisation or "", code).inc()


def count_access(envelope: EnvelopeBody, outcome: str) -> None:
    """Count a recorded access in the Prometheus counters, by the definitions above."""
    labels = (envelope.get("procedure") or "", envelope.get("organisation") or "")
    if outcome.startswith(_REFUSED):
        for code in envelope.get("errors") or ():
            count_refusal(*labels, code)
        return
    if not is_procedure_request(outcome):
        return
    accesses, fields_served, papers_avoided = _access_counters(*labels)
    accesses.inc()
    fields_served.inc(envelope.get("fieldsServed", 0))
    papers_avoided.inc(envelope.get("papersAvoided", 0))
    for code in decision_codes(envelope):
        if code not in _ALLOWED:
            DENIALS.labels(*labels, code).inc()


@functools.lru_cache(maxsize=1024)
def _access_counters(procedure: str, organisation: str) -> tuple[Any, Any, Any]:
    """The counters of every recorded access of a procedure and agency, looked up once
    (the label sets are few; one evicted is looked up again)."""
    return (
        ACCESSES.labels(procedure, organisation),
        FIELDS_SERVED.labels(procedure, organisation),
        PAPERS_AVOIDED.labels(procedure, organisation),
    )


def count_consent(procedure: str, action: str) -> None:
    """Count a consent event."""
    CONSENT_EVENTS.labels(procedure, action).inc()


_procedure_request = sa.and_(
    events.c.outcome.not_in((INTROSPECTION, UNDELIVERED)),
    sa.not_(events.c.outcome.startswith(_REFUSED, autoescape=True)),
)


async def figures(
    engine: AsyncEngine,
    start: datetime.datetime,
    end: datetime.datetime,
    *,
    procedure: str | None = None,
    organisation: str | None = None,
    clients_under: str | None = None,
) -> list[dict[str, Any]]:
    """One row per procedure and agency with activity in [start, end).

    `clients_under`: only events of clients whose id starts with it (an operator's
    organisation, `VN/GOV/<org>/`).
    """
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def row(code: str | None, org: str | None) -> dict[str, Any]:
        key = (code or "", org or "")
        if key not in rows:
            rows[key] = {
                "procedure": key[0] or None,
                "organisation": key[1] or None,
                "requests": 0,
                "fieldsServed": 0,
                "papersAvoided": 0,
                "denials": {},
                "refused": {},
                "consents": {},
            }
        return rows[key]

    # Consent events name the client; its organisation comes from the registry.
    org = sa.func.coalesce(events.c.organisation, clients.c.organisation)
    with_org = events.outerjoin(clients, clients.c.id == events.c.client_id)

    def within(ts: sa.ColumnElement[Any]) -> list[sa.ColumnElement[bool]]:
        found = [ts >= start, ts < end]
        if procedure is not None:
            found.append(events.c.procedure == procedure)
        if organisation is not None:
            found.append(org == organisation)
        if clients_under is not None:
            found.append(events.c.client_id.startswith(clients_under, autoescape=True))
        return found

    async with read_snapshot(engine) as conn:
        served = await conn.execute(
            sa.select(
                events.c.procedure,
                org,
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(events.c.fields_served), 0),
                sa.func.coalesce(sa.func.sum(events.c.papers_avoided), 0),
            )
            .select_from(with_org)
            .where(events.c.type == "access", _procedure_request, *within(events.c.ts))
            .group_by(events.c.procedure, org)
        )
        for code, agency, count, fields, papers in served:
            entry = row(code, agency)
            entry.update(requests=int(count), fieldsServed=int(fields), papersAvoided=int(papers))
        # What was not delivered served nothing. Its mark comes after it (at any time
        # after: the database may have been away), and marks are rare.
        marks = await conn.execute(
            sa.select(events.c.envelope).where(
                events.c.type == "access", events.c.outcome == UNDELIVERED, events.c.ts >= start
            )
        )
        firsts = sorted({str(read_envelope(e).get("undelivered")) for (e,) in marks})
        for chunk in (firsts[i : i + 500] for i in range(0, len(firsts), 500)):
            unserved = await conn.execute(
                sa.select(events.c.procedure, org, events.c.fields_served, events.c.papers_avoided)
                .select_from(with_org)
                .where(
                    events.c.id.in_(chunk),
                    events.c.type == "access",
                    _procedure_request,
                    *within(events.c.ts),
                )
            )
            for code, agency, fields, papers in unserved:
                entry = row(code, agency)
                entry["fieldsServed"] -= int(fields)
                entry["papersAvoided"] -= int(papers)
        # Refusals are few rows (at most a first and a summary per client, code and
        # minute on each replica): summed here, a summary as the count it carries.
        refused = await conn.execute(
            sa.select(events.c.procedure, org, events.c.outcome, events.c.envelope)
            .select_from(with_org)
            .where(
                events.c.type == "access",
                events.c.outcome.startswith(_REFUSED, autoescape=True),
                *within(events.c.ts),
            )
        )
        for code, agency, outcome, envelope in refused:
            counts = row(code, agency)["refused"]
            reason = outcome.removeprefix(_REFUSED)
            many = read_envelope(envelope).get("refused", 1)
            counts[reason] = counts.get(reason, 0) + int(many)
        denied = await conn.execute(
            sa.select(events.c.procedure, org, event_decisions.c.decision, sa.func.count())
            .select_from(with_org.join(event_decisions, event_decisions.c.event_id == events.c.id))
            .where(event_decisions.c.decision.not_in(_ALLOWED), *within(event_decisions.c.ts))
            .group_by(events.c.procedure, org, event_decisions.c.decision)
        )
        for code, agency, decision, count in denied:
            row(code, agency)["denials"][decision] = int(count)
        consents = await conn.execute(
            sa.select(events.c.procedure, org, events.c.outcome, sa.func.count())
            .select_from(with_org)
            .where(events.c.type == "consent", *within(events.c.ts))
            .group_by(events.c.procedure, org, events.c.outcome)
        )
        for code, agency, action, count in consents:
            row(code, agency)["consents"][action] = int(count)
    return sorted(rows.values(), key=lambda r: (r["procedure"] or "", r["organisation"] or ""))


def _day(ts: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[str]:
    """The day of an instant in Vietnam's time, as `YYYY-MM-DD` (no daylight saving)."""
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone("Asia/Ho_Chi_Minh", ts), "YYYY-MM-DD")
    return sa.func.date(ts, "+7 hours")


async def daily_figures(
    engine: AsyncEngine,
    start: datetime.datetime,
    end: datetime.datetime,
    *,
    procedure: str | None = None,
    organisation: str | None = None,
    clients_under: str | None = None,
) -> list[dict[str, Any]]:
    """One row per day (in Vietnam's time), procedure and agency with activity in
    [start, end): requests, fields served and papers avoided as `figures` counts them,
    refused requests (every code) and consent events (every action).

    Each kind is one grouped query, whatever the number of days.
    """
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}

    def row(day: str, code: str | None, agency: str | None) -> dict[str, Any]:
        key = (str(day), code or "", agency or "")
        if key not in rows:
            rows[key] = {
                "day": key[0],
                "procedure": key[1] or None,
                "organisation": key[2] or None,
                "requests": 0,
                "fieldsServed": 0,
                "papersAvoided": 0,
                "refused": 0,
                "consents": 0,
            }
        return rows[key]

    org = sa.func.coalesce(events.c.organisation, clients.c.organisation)
    with_org = events.outerjoin(clients, clients.c.id == events.c.client_id)
    day = _day(events.c.ts, engine.dialect.name)
    found = [events.c.ts >= start, events.c.ts < end]
    if procedure is not None:
        found.append(events.c.procedure == procedure)
    if organisation is not None:
        found.append(org == organisation)
    if clients_under is not None:
        found.append(events.c.client_id.startswith(clients_under, autoescape=True))

    async with read_snapshot(engine) as conn:
        served = await conn.execute(
            sa.select(
                day,
                events.c.procedure,
                org,
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(events.c.fields_served), 0),
                sa.func.coalesce(sa.func.sum(events.c.papers_avoided), 0),
            )
            .select_from(with_org)
            .where(events.c.type == "access", _procedure_request, *found)
            .group_by(day, events.c.procedure, org)
        )
        for when, code, agency, count, fields, papers in served:
            row(when, code, agency).update(
                requests=int(count), fieldsServed=int(fields), papersAvoided=int(papers)
            )
        marks = await conn.execute(
            sa.select(events.c.envelope).where(
                events.c.type == "access", events.c.outcome == UNDELIVERED, events.c.ts >= start
            )
        )
        firsts = sorted({str(read_envelope(e).get("undelivered")) for (e,) in marks})
        for chunk in (firsts[i : i + 500] for i in range(0, len(firsts), 500)):
            unserved = await conn.execute(
                sa.select(
                    day, events.c.procedure, org, events.c.fields_served, events.c.papers_avoided
                )
                .select_from(with_org)
                .where(
                    events.c.id.in_(chunk), events.c.type == "access", _procedure_request, *found
                )
            )
            for when, code, agency, fields, papers in unserved:
                entry = row(when, code, agency)
                entry["fieldsServed"] -= int(fields)
                entry["papersAvoided"] -= int(papers)
        refused = await conn.execute(
            sa.select(day, events.c.procedure, org, events.c.envelope)
            .select_from(with_org)
            .where(
                events.c.type == "access",
                events.c.outcome.startswith(_REFUSED, autoescape=True),
                *found,
            )
        )
        for when, code, agency, envelope in refused:
            row(when, code, agency)["refused"] += int(read_envelope(envelope).get("refused", 1))
        consents = await conn.execute(
            sa.select(day, events.c.procedure, org, sa.func.count())
            .select_from(with_org)
            .where(events.c.type == "consent", *found)
            .group_by(day, events.c.procedure, org)
        )
        for when, code, agency, count in consents:
            row(when, code, agency)["consents"] = int(count)
    return sorted(
        rows.values(), key=lambda r: (r["day"], r["procedure"] or "", r["organisation"] or "")
    )
