"""Patterns worth a look in the access records, and the questions citizens raised.

    GET  /kiem-tra/dau-hieu                       patterns over a period (`from`, `to`: dates)
    GET  /kiem-tra/dau-hieu/chu-the/{handle}      one flagged person's accesses in the period
    GET  /kiem-tra/cau-hoi                        citizens' questions: status, date, system
    GET  /kiem-tra/cau-hoi/{id}                   one question's text and the access it is about
    POST /kiem-tra/cau-hoi/{id}/tra-loi           answer it (CSRF; 1 to 2000 characters)

Patterns are computed from the records over the period (default: the last 7 days,
today included, in Vietnam's time; at most `GATEWAY_AUDIT_MAX_RANGE_DAYS`) by
`gateway.records.patterns`; each finding links to the search `/kiem-tra?...` that shows
its records. Opening the page reads the log: it is an `auditor_search` record (filter
`{"patterns": true, "from", "to"}`, no one named). A person read by many organisations
is shown as a handle; opening it finds the person again among the period's candidates
and reads their accesses: an `auditor_search` record naming the person, exactly as a
search by their id, so that they see an auditor looked.

The questions' list shows what envelopes say (date, system asked about, answered or
not), never the text: reading a question opens its personal part, recorded first as an
`auditor_search` naming the citizen. An answer is an `admin` record
(`citizen_question_answered`; see `gateway.records._questions`) that the citizen reads on
their access's page.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Mapping
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from gateway.errors import GatewayError, InvalidArgument, NotFound
from gateway.instants import VIETNAM, vietnam_time
from gateway.records import (
    Patterns,
    PatternSettings,
    SearchFilter,
    answer_event,
    open_question,
    patterns,
    pseudonym,
    questions,
    subject_of_handle,
    time_range,
)
from gateway.state import GatewayState, State
from gateway.storage import events, read_snapshot
from gateway.web._audit_routes import auditor_item, record_read, record_search
from gateway.web._auditor_console import outcome_text
from gateway.web._consoles import console_page, refuse_cross_site
from gateway.web._i18n import gettext, locale_of, procedure_label
from gateway.web._sessions import BrowserAuditor, BrowserSession, check_csrf
from policies import ORGANISATION_NAMES

__all__ = ["auditor_patterns_router"]

_DEFAULT_DAYS: Final = 7
"""The patterns' default period: the last 7 days, today included."""
_QUESTION_DAYS: Final = 30
_ANSWER_MAX: Final = 2000
_ACCESSES_SHOWN: Final = 200
_HANDLE: Final = re.compile(r"[0-9a-f]{32}")
_EVENT_ID: Final = re.compile(r"[0-9a-f]{32}")


@dataclasses.dataclass(frozen=True, slots=True)
class _Period:
    """A period as the page's form gives it (dates) and as instants."""

    start: datetime.datetime
    end: datetime.datetime
    first_day: str
    last_day: str

    def query(self) -> dict[str, str]:
        return {"from": self.first_day, "to": self.last_day}


def _period(start: str | None, end: str | None, *, days: int, max_days: int) -> _Period:
    """`[from, to]` as dates in Vietnam; by default the last `days` days, today included.

    Raises `InvalidArgument` (the argument named) as the search does.
    """
    today = datetime.datetime.now(VIETNAM).date()
    last = end or today.isoformat()
    days = min(days, max_days)
    if start:
        first = start
    else:
        anchor = datetime.date.fromisoformat(last) if _is_date(last) else today
        try:
            first = (anchor - datetime.timedelta(days=days - 1)).isoformat()
        except OverflowError:  # a `to` at the calendar's first days: refused below
            first = anchor.isoformat()
    since, until = time_range(first, last, max_days=max_days)
    return _Period(since, until, first, last)


def _is_date(text: str) -> bool:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def _search_href(search: Mapping[str, str], period: _Period) -> str:
    """The search page's address of a finding, over the page's period (as dates)."""
    given = {k: v for k, v in search.items() if k not in ("from", "to")}
    return "/kiem-tra?" + urlencode({**period.query(), **given})


def _organisation_name(client_id: str | None, registered: Mapping[str, tuple[str, str]]) -> str:
    if client_id is not None and client_id in registered:
        return registered[client_id][0]
    parts = (client_id or "").split("/")
    names = ORGANISATION_NAMES.get("/".join(parts[:3])) if len(parts) >= 3 else None
    return names[0] if names else ""


def _problem(
    request: Request, session: BrowserSession, exc: GatewayError, *, active: str
) -> Response:
    return console_page(
        request,
        session,
        "auditor/patterns_problem.html",
        {"code": exc.code, "message": str(exc), "back": f"/kiem-tra/{_BACK[active]}"},
        role="auditor",
        active=active,
        status_code=exc.http_status,
    )


_BACK: Final = {"patterns": "dau-hieu", "questions": "cau-hoi"}


def _shown_patterns(found: Patterns, period: _Period) -> dict[str, Any]:
    """The findings as the page lists them, each with its search's address."""
    return {
        "busy": [
            {**dataclasses.asdict(b), "href": _search_href(b.search, period)} for b in found.busy
        ],
        "outside": [
            {**dataclasses.asdict(o), "href": _search_href(o.search, period)} for o in found.outside
        ],
        "refusals": [
            {
                **dataclasses.asdict(r),
                "links": [
                    {"code": code, "count": r.codes[code], "href": _search_href(s, period)}
                    for code, s in r.searches.items()
                ],
            }
            for r in found.refusals
        ],
        "shared": [
            {
                **dataclasses.asdict(s),
                "href": f"/kiem-tra/dau-hieu/chu-the/{s.handle}?{urlencode(period.query())}",
            }
            for s in found.shared
        ],
        "leftOff": found.left_off,
    }


def auditor_patterns_router() -> APIRouter:
    """The pages under `/kiem-tra` of patterns and citizens' questions."""
    router = APIRouter(prefix="/kiem-tra", include_in_schema=False)

    @router.get("/dau-hieu")
    async def home(
        request: Request,
        state: State,
        session: BrowserAuditor,
        start: Annotated[str | None, Query(alias="from", max_length=40)] = None,
        end: Annotated[str | None, Query(alias="to", max_length=40)] = None,
    ) -> Response:
        settings = state.settings
        try:
            period = _period(
                start or None,
                end or None,
                days=_DEFAULT_DAYS,
                max_days=settings.audit_max_range_days,
            )
        except InvalidArgument as exc:
            return _problem(request, session, exc, active="patterns")
        thresholds = PatternSettings.of(settings)
        async with read_snapshot(state.engine) as conn:
            found = await patterns(
                conn,
                period.start,
                period.end,
                settings=thresholds,
                pseudonym_key=state.pseudonym_key,
            )
        # The page reads the log: recorded before it is shown (503 if it cannot be).
        refuse_cross_site(request)
        await record_read(
            request,
            state,
            session.identity,
            {"patterns": True, "from": period.first_day, "to": period.last_day},
            results=found.findings(),
        )
        return console_page(
            request,
            session,
            "auditor/patterns.html",
            {
                "period": period.query(),
                "thresholds": thresholds,
                "found": _shown_patterns(found, period),
                "count": found.findings(),
            },
            role="auditor",
            active="patterns",
        )

    @router.get("/dau-hieu/chu-the/{handle}")
    async def person(
        request: Request,
        state: State,
        session: BrowserAuditor,
        handle: str,
        start: Annotated[str | None, Query(alias="from", max_length=40)] = None,
        end: Annotated[str | None, Query(alias="to", max_length=40)] = None,
    ) -> Response:
        settings = state.settings
        try:
            if not _HANDLE.fullmatch(handle):
                raise InvalidArgument("A handle is 32 lowercase hexadecimal digits.")
            period = _period(
                start or None,
                end or None,
                days=_DEFAULT_DAYS,
                max_days=settings.audit_max_range_days,
            )
            async with read_snapshot(state.engine) as conn:
                subject = await subject_of_handle(
                    conn,
                    period.start,
                    period.end,
                    handle,
                    min_orgs=settings.audit_pattern_min_orgs,
                    pseudonym_key=state.pseudonym_key,
                )
                if subject is None:
                    raise NotFound(
                        "No person flagged in this period has this handle.", kind="Pattern"
                    )
                flt = SearchFilter(
                    start=period.start, end=period.end, subject=subject, types=("access",)
                )
                rows = (
                    await conn.execute(
                        flt.query()
                        .order_by(events.c.ts.desc(), events.c.id.desc())
                        .limit(_ACCESSES_SHOWN)
                    )
                ).all()
        except GatewayError as exc:
            if exc.http_status >= 500:
                raise
            return _problem(request, session, exc, active="patterns")
        # As a search by the person's id: recorded first, naming them.
        refuse_cross_site(request)
        await record_search(
            request, state, session.identity, flt, {"results": len(rows), "export": False}
        )
        locale = locale_of(request)
        accesses = [
            {
                "id": row.id,
                "time": vietnam_time(row.ts),
                "organisation": row.organisation or "",
                "client": row.client_id or "",
                "procedure": procedure_label(state.catalogue, row.procedure, locale),
                "procedureCode": row.procedure or "",
                "outcome": outcome_text(row.outcome, locale),
            }
            for row in rows
        ]
        return console_page(
            request,
            session,
            "auditor/patterns_person.html",
            {
                "handle": handle,
                "period": period.query(),
                "accesses": accesses,
                "organisations": len({a["organisation"] for a in accesses}),
                "more": len(rows) >= _ACCESSES_SHOWN,
                "back": f"/kiem-tra/dau-hieu?{urlencode(period.query())}",
            },
            role="auditor",
            active="patterns",
        )

    @router.get("/cau-hoi")
    async def question_list(
        request: Request,
        state: State,
        session: BrowserAuditor,
        start: Annotated[str | None, Query(alias="from", max_length=40)] = None,
        end: Annotated[str | None, Query(alias="to", max_length=40)] = None,
        status: Annotated[str | None, Query(max_length=20)] = None,
    ) -> Response:
        try:
            period = _period(
                start or None,
                end or None,
                days=_QUESTION_DAYS,
                max_days=state.settings.audit_max_range_days,
            )
            if status not in (None, "", "open", "answered"):
                raise InvalidArgument("`status` is `open` or `answered`.", argument="status")
        except InvalidArgument as exc:
            return _problem(request, session, exc, active="questions")
        async with read_snapshot(state.engine) as conn:
            listed = await questions(conn, period.start, period.end)
        # Envelopes only, but of the log: recorded as any read of it is.
        refuse_cross_site(request)
        await record_read(
            request,
            state,
            session.identity,
            {"questions": True, "from": period.first_day, "to": period.last_day},
            results=len(listed),
        )
        systems = await state.clients.names({q.client_id for q in listed if q.client_id})
        shown = [
            {
                "id": q.id,
                "time": vietnam_time(q.ts),
                "client": q.client_id or "",
                "system": systems.get(q.client_id or "", ("", ""))[1],
                "organisation": _organisation_name(q.client_id, systems),
                "answered": q.answered,
                "answeredAt": vietnam_time(q.answers[-1].ts) if q.answers else "",
            }
            for q in listed
        ]
        counts = {
            "open": sum(1 for q in shown if not q["answered"]),
            "answered": sum(1 for q in shown if q["answered"]),
        }
        if status:
            shown = [q for q in shown if q["answered"] == (status == "answered")]
        return console_page(
            request,
            session,
            "auditor/questions.html",
            {
                "period": period.query(),
                "status": status or "",
                "questions": shown,
                "counts": counts,
            },
            role="auditor",
            active="questions",
        )

    async def _question_page(
        request: Request,
        state: GatewayState,
        session: BrowserSession,
        event_id: str,
        *,
        error: str | None = None,
        draft: str = "",
    ) -> Response:
        try:
            if not _EVENT_ID.fullmatch(event_id):
                raise NotFound("No question has this id.", kind="Question")
            async with read_snapshot(state.engine) as conn:
                opened = await open_question(conn, event_id)
                if opened is None:
                    raise NotFound("No question has this id.", kind="Question")
                access = (
                    await conn.execute(
                        SearchFilter(
                            start=datetime.datetime.min.replace(tzinfo=datetime.UTC),
                            end=datetime.datetime.max.replace(tzinfo=datetime.UTC),
                        )
                        .query()
                        .where(events.c.id == opened.access)
                    )
                ).first()
        except GatewayError as exc:
            if exc.http_status >= 500:
                raise
            return _problem(request, session, exc, active="questions")
        # Reading the question's text is reading the citizen's personal data: recorded
        # first, naming them, so that they see an auditor read it.
        refuse_cross_site(request)
        await record_read(
            request,
            state,
            session.identity,
            {"question": opened.question.id, "read": "question"},
            results=1,
            subjects=[opened.subject],
            personal={"subject": opened.subject, "event": opened.question.id},
        )
        locale = locale_of(request)
        item = None if access is None else auditor_item(access)
        systems = await state.clients.names({opened.question.client_id or ""})
        return console_page(
            request,
            session,
            "auditor/questions_one.html",
            {
                "question": {
                    "id": opened.question.id,
                    "time": vietnam_time(opened.question.ts),
                    "text": opened.text,
                    "client": opened.question.client_id or "",
                    "organisation": _organisation_name(opened.question.client_id, systems),
                    "answers": [
                        {
                            "time": vietnam_time(a.ts),
                            "text": a.text or "",
                            "auditorOrg": a.auditor_org or "",
                        }
                        for a in opened.question.answers
                    ],
                },
                "access": None
                if item is None or access is None
                else {
                    **item,
                    "timeText": vietnam_time(access.ts),
                    "procedureName": procedure_label(state.catalogue, access.procedure, locale),
                    "outcomeText": outcome_text(access.outcome, locale),
                },
                "answered": request.query_params.get("da-tra-loi") == "1",
                "error": error,
                "draft": draft,
                "max": _ANSWER_MAX,
            },
            role="auditor",
            active="questions",
            status_code=400 if error else 200,
        )

    @router.get("/cau-hoi/{event_id}")
    async def question(
        request: Request, state: State, session: BrowserAuditor, event_id: str
    ) -> Response:
        return await _question_page(request, state, session, event_id)

    @router.post("/cau-hoi/{event_id}/tra-loi")
    async def answer(
        request: Request,
        state: State,
        session: BrowserAuditor,
        event_id: str,
        text: Annotated[str, Form(alias="answer")] = "",
    ) -> Response:
        await check_csrf(request, session)
        answer_text = text.strip()
        if not 0 < len(answer_text) <= _ANSWER_MAX:
            return await _question_page(
                request,
                state,
                session,
                event_id,
                error=gettext("An answer is 1 to 2000 characters.", locale_of(request)),
                draft=text[:_ANSWER_MAX],
            )
        opened = None
        if _EVENT_ID.fullmatch(event_id):
            async with read_snapshot(state.engine) as conn:
                opened = await open_question(conn, event_id)
        if opened is None:
            return _problem(
                request,
                session,
                NotFound("No question has this id.", kind="Question"),
                active="questions",
            )
        identity = session.identity
        await state.recorder.record(
            answer_event(
                request_id=getattr(request.state, "request_id", None) or "",
                policy_version=state.catalogue.version,
                question=opened.question,
                subject=opened.subject,
                answer=answer_text,
                auditor=identity.subject,
                auditor_pseudonym=pseudonym(state.pseudonym_key, identity.subject, "auditor"),
                auditor_org=identity.org,
            )
        )
        return RedirectResponse(f"/kiem-tra/cau-hoi/{event_id}?da-tra-loi=1", status_code=303)

    return router
