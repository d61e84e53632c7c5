"""The auditor's console: search the access records, read one envelope, export them with
their proofs, and verify an export in the browser.

    GET /kiem-tra                 the search form; with a query, a page of results
    GET /kiem-tra/ban-ghi/{id}    one record's envelope, in plain words
    GET /kiem-tra/xuat            the export with proofs (the bytes of `/audit/export`)

The pages search as `GET /audit/events` does, through the same pieces: the query string
is read by the API's own filter dependency (`_audit_routes._filter`, so every filter it
gains arrives here too), results come from `search_page`, and every search, record read
and export is an `auditor_search` record committed before anything is shown
(`record_search`). Reading one record is recorded as a search of its id
(`{"event": id}`). A filter the API refuses (a range too long, an unknown decision) is
shown in the form with its code, answered 400; an unknown record is a 404 page.

Verification gives no verdict from the server: the search page's section loads
`static/kiem-tra.js`, which checks an export file (the checkpoint's signature with the
log's published key, each envelope's hash, each leaf and inclusion proof) in the
browser.
"""

from __future__ import annotations

import datetime
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Final
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response, StreamingResponse

from gateway.errors import GatewayError, InvalidIdentifier, NotFound
from gateway.instants import VIETNAM
from gateway.records import (
    DECISION_CODES,
    DOSSIER_STATUSES,
    SearchFilter,
    page_limit,
    read_envelope,
    search_page,
)
from gateway.records._search import with_delivery
from gateway.state import GatewayState, State
from gateway.storage import EVENT_TYPES, events, read_snapshot
from gateway.web._audit_routes import (
    _filter,
    auditor_item,
    export_lines,
    record_read,
    record_search,
)
from gateway.web._consoles import console_page, refuse_cross_site
from gateway.web._i18n import (
    field_label,
    gettext,
    legal_basis_text,
    locale_of,
    procedure_label,
)
from gateway.web._labels import N_
from gateway.web._sessions import BrowserAuditor, BrowserSession
from policies import Catalogue, UnknownProcedure

__all__ = [
    "DECISION_NAMES",
    "FILTERS",
    "OUTCOME_NAMES",
    "TYPE_NAMES",
    "auditor_console_router",
    "envelope_rows",
    "error_text",
    "lenient",
    "local_time",
    "outcome_text",
]

_PAGE: Final = 50
_EVENT_ID: Final = re.compile(r"[0-9a-f]{32}")
_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")

TYPE_NAMES: Final[Mapping[str, str]] = {
    "access": N_("Data access"),
    "consent": N_("Consent"),
    "admin": N_("Administration"),
    "auditor_search": N_("Auditor's search"),
    "key": N_("Signing key"),
}
"""Each event type in plain words."""

DECISION_NAMES: Final[Mapping[str, str]] = {
    "ALLOWED_BY_LAW": N_("Served by law"),
    "ALLOWED_BY_CONSENT": N_("Served with the person's consent"),
    "CLIENT_NOT_AUTHORISED": N_("Withheld: the system may not read it"),
    "SUBJECT_NOT_IN_CASE": N_("Withheld: the person is not in the case"),
    "PURPOSE_NOT_ALLOWED": N_("Withheld: the procedure does not allow it"),
    "CONSENT_REQUIRED": N_("Withheld: the person's consent is needed"),
}
"""Each decision code in plain words."""

OUTCOME_NAMES: Final[Mapping[str, str]] = {
    "served": N_("Data served"),
    "denied": N_("Refused"),
    "no_data": N_("Nothing served"),
    "invalid_request": N_("Invalid request"),
    "introspection": N_("Schema lookup"),
    "undelivered": N_("Not delivered"),
    "searched": N_("Search"),
    "exported": N_("Export"),
    "forgotten": N_("Person's records made unreadable"),
    "cleared": N_("Personal parts cleared after retention"),
    "requested": N_("Consent requested"),
    "approved": N_("Consent given"),
    "revoked": N_("Consent withdrawn"),
    "citizen_question": N_("Citizen's question"),
}
"""Known outcomes in plain words; others are shown as they are."""

DOSSIER_NAMES: Final[Mapping[str, str]] = {
    "RECEIVED": N_("Received"),
    "IN_PROGRESS": N_("In progress"),
    "RETURNED": N_("Returned to the applicant"),
    "DONE": N_("Done (result delivered)"),
    "CANCELLED": N_("Cancelled"),
}
"""Each status of a case's dossier in plain words (`DOSSIER_STATUSES`)."""

FILTERS: Final[tuple[tuple[str, str, str], ...]] = (
    # (query name, label msgid, kind: date | text | type | decision | hours | dossier)
    ("from", N_("From (date)"), "date"),
    ("to", N_("To (date)"), "date"),
    ("procedure", N_("Procedure code"), "text"),
    ("client", N_("Client system (id)"), "text"),
    ("organisation", N_("Organisation"), "text"),
    ("officer", N_("Officer (id)"), "text"),
    ("officerPseudonym", N_("Officer (pseudonym)"), "text"),
    ("case", N_("Case number"), "text"),
    ("subject", N_("Person (personal id, enterprise code or household)"), "text"),
    ("type", N_("Record type"), "type"),
    ("decision", N_("Decision"), "decision"),
    ("hours", N_("Time of day"), "hours"),
    ("code", N_("Error or refusal code"), "text"),
    ("dossierStatus", N_("Status of the case's dossier"), "dossier"),
)
"""The search form's inputs: every parameter of `GET /audit/events`."""

_HEADER: Final[Mapping[str, str]] = {
    "v": N_("Envelope version"),
    "id": N_("Record id"),
    "type": N_("Record type"),
    "ts": N_("Time"),
    "requestId": N_("Request id"),
    "outcome": N_("Outcome"),
    "policyVersion": N_("Policy version"),
    "subjectCommitments": N_("Subject commitments"),
    "personalHash": N_("Hash of the personal part"),
}

_BODY: Final[Mapping[str, str]] = {
    "procedure": N_("Procedure"),
    "case": N_("Case (pseudonym)"),
    "officer": N_("Officer (pseudonym)"),
    "client": N_("Client system"),
    "organisation": N_("Organisation"),
    "subjects": N_("Number of people asked about"),
    "kid": N_("Signing key of the request"),
    "jti": N_("Request token id"),
    "hiddenUntil": N_("Hidden from the person until"),
    "reusesRefusedToken": N_("Reuses a refused token"),
    "sources": N_("Sources asked"),
    "sourceVersions": N_("Source connector versions"),
    "sourceCalls": N_("Calls to sources"),
    "caseConfirmation": N_("Case confirmed by the dossier registry"),
    "actions": N_("Actions"),
    "status": N_("HTTP status"),
    "errors": N_("Error codes"),
    "fieldsServed": N_("Fields served"),
    "papersAvoided": N_("Papers avoided"),
    "refused": N_("Refusals summarised"),
    "minute": N_("Minute of the refusals"),
    "undelivered": N_("Record not delivered"),
    "consent": N_("Consent (commitment)"),
    "action": N_("Action"),
    "consumer": N_("System asking for consent"),
    "fields": N_("Fields"),
    "validUntil": N_("Valid until"),
    "actor": N_("Done by"),
    "acr": N_("Sign-in level"),
    "operator": N_("Operator (pseudonym)"),
    "operatorOrg": N_("Operator's organisation"),
    "events": N_("Records made unreadable"),
    "records": N_("Number of records made unreadable"),
    "recordsDigest": N_("Digest of those records"),
    "consentsDeleted": N_("Consents deleted"),
    "auditor": N_("Auditor (pseudonym)"),
    "auditorOrg": N_("Auditor's organisation"),
    "filter": N_("Search filter"),
    "results": N_("Results"),
    "export": N_("Export"),
    "checkpoint": N_("Checkpoint size"),
}
"""Envelope fields in plain words (`EnvelopeBody`); an unknown one shows its key."""

_NONE: Final = "\N{EN DASH}"
_TIMES: Final = frozenset({"ts", "hiddenUntil", "validUntil"})


def local_time(value: Any) -> str:
    """An instant (datetime or RFC 3339 text) in Vietnam's time: `dd/mm/yyyy HH:MM`."""
    if value is None or value == "":
        return ""
    instant = value if isinstance(value, datetime.datetime) else None
    if instant is None:
        try:
            instant = datetime.datetime.fromisoformat(str(value))
        except ValueError:
            return str(value)
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=datetime.UTC)
    return instant.astimezone(VIETNAM).strftime("%d/%m/%Y %H:%M")


def outcome_text(outcome: str | None, locale: str) -> str:
    """An outcome in plain words; a refusal `rejected:CODE` names its code."""
    if not outcome:
        return ""
    if outcome.startswith("rejected:"):
        code = outcome.split(":", 1)[1]
        return gettext("Rejected (%(code)s)", locale) % {"code": code}
    msgid = OUTCOME_NAMES.get(outcome)
    return gettext(msgid, locale) if msgid else outcome


def _laws(catalogue: Catalogue, code: str | None, locale: str) -> list[str]:
    if not code:
        return []
    try:
        return [legal_basis_text(b, locale) for b in catalogue.get(code).legal_basis]
    except UnknownProcedure:
        return []


def _text(value: Any) -> str:
    """A value of an envelope as one line of text."""
    if value is None:
        return _NONE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        return ", ".join(str(v) for v in value) if value else _NONE
    if isinstance(value, Mapping) and all(isinstance(v, str | int) for v in value.values()):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) if value else _NONE
    return orjson.dumps(value).decode()


def _decision(
    entry: Any, catalogue: Catalogue, procedure: str | None, locale: str
) -> dict[str, Any]:
    """One entry of an access's `decisions`, in plain words."""
    if not isinstance(entry, Mapping):
        return {"field": _text(entry), "decision": "", "code": "", "basis": "", "laws": []}
    code = str(entry.get("decision") or "")
    msgid = DECISION_NAMES.get(code)
    path = str(entry.get("path") or "")
    subjects = entry.get("subjects")
    shown: dict[str, Any] = {
        "field": field_label(path, locale) if path else _NONE,
        "path": path,
        "code": code,
        "decision": gettext(msgid, locale) if msgid else code,
        "served": code.startswith("ALLOWED"),
        "subjects": len(subjects) if isinstance(subjects, list) else "",
        "basis": "",
        "laws": [],
    }
    basis = entry.get("basis")
    if code == "ALLOWED_BY_LAW":
        shown["basis"] = gettext("Law", locale)
        shown["laws"] = _laws(catalogue, procedure, locale)
    elif code == "ALLOWED_BY_CONSENT":
        shown["basis"] = gettext("Consent", locale)
        if basis:
            shown["laws"] = [gettext("Consent (commitment): %(id)s", locale) % {"id": basis}]
    elif basis:
        shown["basis"] = str(basis)
    return shown


def envelope_rows(envelope: Mapping[str, Any], catalogue: Catalogue, locale: str) -> dict[str, Any]:
    """An envelope in plain words: its fields as label and text lines, its decisions.

    Every event type is read the same way: the fields it has are listed (known ones
    with their label, unknown ones under their key), `decisions` as a table.
    """
    procedure = envelope.get("procedure")
    procedure = procedure if isinstance(procedure, str) else None
    rows: list[dict[str, str]] = []
    for key, value in envelope.items():
        if key == "decisions" or key in _HEADER:
            continue
        msgid = _BODY.get(key)
        label = gettext(msgid, locale) if msgid else key
        if key == "procedure" and procedure:
            text = f"{procedure} \N{EN DASH} {procedure_label(catalogue, procedure, locale)}"
        elif key in _TIMES and isinstance(value, str):
            text = local_time(value)
        elif key == "fields" and isinstance(value, list):
            text = ", ".join(field_label(str(p), locale) for p in value) or _NONE
        elif key == "filter" and isinstance(value, Mapping):
            text = "; ".join(f"{k} = {_text(v)}" for k, v in value.items()) or _NONE
        elif key == "outcome":
            text = outcome_text(str(value), locale)
        else:
            text = _text(value)
        rows.append({"key": key, "label": label, "text": text})
    header = []
    for key in _HEADER:
        if key not in envelope:
            continue
        value = envelope[key]
        if key == "ts":
            text = local_time(value)
        elif key == "type":
            msgid = TYPE_NAMES.get(str(value))
            text = gettext(msgid, locale) if msgid else str(value)
        elif key == "outcome":
            text = outcome_text(str(value), locale)
        elif key == "subjectCommitments" and isinstance(value, list):
            text = str(len(value))
        else:
            text = _text(value)
        header.append({"key": key, "label": gettext(_HEADER[key], locale), "text": text})
    decisions = envelope.get("decisions")
    return {
        "header": header,
        "rows": rows,
        "decisions": [
            _decision(d, catalogue, procedure, locale)
            for d in (decisions if isinstance(decisions, list) else [])
        ],
        "procedureCode": procedure,
        "procedureName": procedure_label(catalogue, procedure, locale),
        "laws": _laws(catalogue, procedure, locale),
    }


def _decisions_text(envelope: Mapping[str, Any], locale: str) -> list[str]:
    decisions = envelope.get("decisions")
    codes = sorted(
        {str(d.get("decision")) for d in decisions if isinstance(d, Mapping)}
        if isinstance(decisions, list)
        else set()
    )
    return [gettext(DECISION_NAMES[c], locale) if c in DECISION_NAMES else c for c in codes]


def _result(item: dict[str, Any], catalogue: Catalogue, locale: str) -> dict[str, Any]:
    """A search result (`auditor_item`) as a row of the results table."""
    envelope = item.get("envelope") or {}
    type_msgid = TYPE_NAMES.get(item["type"])
    return {
        "id": item["id"],
        "time": local_time(item.get("time")),
        "type": gettext(type_msgid, locale) if type_msgid else item["type"],
        "organisation": item.get("organisation")
        or envelope.get("organisation")
        or envelope.get("auditorOrg")
        or "",
        "client": item.get("clientId") or envelope.get("client") or "",
        "procedure": item.get("procedure") or "",
        "procedureName": procedure_label(catalogue, item.get("procedure"), locale),
        "outcome": outcome_text(item.get("outcome"), locale),
        "decisions": _decisions_text(envelope, locale),
        "pending": item.get("leafIndex") is None,
    }


def lenient(build: Callable[..., Any]) -> Callable[..., Any]:
    """`build` (a filter dependency) as a dependency for the pages, with its parameters.

    Empty inputs of a form (`client=`) count as not given, and a filter the API refuses
    comes back as its `GatewayError` (a 4xx) instead of being raised, so that the page
    shows it in the form. The parameters are `build`'s own, so that every filter it
    gains is read here too.
    """
    signature = inspect.signature(build, eval_str=True)

    async def dependency(**values: Any) -> Any:
        given = {
            name: None if isinstance(value, str) and not value.strip() else value
            for name, value in values.items()
        }
        try:
            found = build(**given)
            return await found if inspect.isawaitable(found) else found
        except GatewayError as exc:
            if exc.http_status >= 500:
                raise
            return exc

    dependency.__signature__ = signature.replace(return_annotation=Any)  # type: ignore[attr-defined]
    dependency.__name__ = f"lenient_{build.__name__}"
    return dependency


PageFilter = Annotated[SearchFilter | GatewayError, Depends(lenient(_filter))]
"""The API's search filter, or the error it gave (shown in the form)."""

_NOT_FILTERS: Final = frozenset({"lang", "cursor", "limit"})


def error_text(exc: GatewayError, locale: str) -> str:
    """What is wrong with a search, in plain words (the page shows its code beside)."""
    argument = exc.detail.get("argument")
    if "maxDays" in exc.detail:
        return gettext("A search spans at most %(days)s days: narrow the dates.", locale) % {
            "days": exc.detail["maxDays"]
        }
    if exc.code == "NOT_FOUND":
        return gettext("No checkpoint has been signed yet: try again in a moment.", locale)
    messages = {
        "from": N_("The dates are not valid: the start must be a date before the end."),
        "to": N_("The dates are not valid: the start must be a date before the end."),
        "subject": N_("The person's id is not a personal id, enterprise code or household id."),
        "cursor": N_("The link to the next page is no longer valid: search again."),
        "limit": N_("Too many records asked for on one page."),
        "type": N_("Unknown record type."),
        "decision": N_("Unknown decision."),
        "dossierStatus": N_("Unknown dossier status."),
    }
    msgid = messages.get(str(argument)) if argument else None
    if msgid is None and exc.code == "INVALID_IDENTIFIER":
        msgid = messages["subject"]
    return gettext(msgid or N_("A filter is not valid."), locale)


def _given(request: Request) -> dict[str, str]:
    """The form's values as the query string gives them (for the inputs and links)."""
    return {k: v for k, v in request.query_params.items() if k != "lang"}


def _inputs(values: Mapping[str, str], locale: str) -> list[dict[str, Any]]:
    shown = []
    for name, msgid, kind in FILTERS:
        value = values.get(name, "")
        field: dict[str, Any] = {
            "name": name,
            "id": f"f-{name}",
            "label": gettext(msgid, locale),
            "kind": kind,
            "value": value,
        }
        if kind == "date":
            # A date input shows a plain date; an exact instant (from the API's form) is
            # kept as text so that the search does not change.
            field["kind"] = "date" if not value or _DATE.fullmatch(value) else "text"
        elif kind == "type":
            field["options"] = [
                (t, gettext(TYPE_NAMES[t], locale) if t in TYPE_NAMES else t) for t in EVENT_TYPES
            ]
        elif kind == "decision":
            field["options"] = [(c, gettext(DECISION_NAMES[c], locale)) for c in DECISION_CODES]
        elif kind == "hours":
            field["options"] = [("outside", gettext("Outside working hours", locale))]
        elif kind == "dossier":
            field["options"] = [(s, gettext(DOSSIER_NAMES[s], locale)) for s in DOSSIER_STATUSES]
        shown.append(field)
    return shown


def _search_url(path: str, values: Mapping[str, str], **changes: str | None) -> str:
    query = {k: v for k, v in values.items() if v}
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return f"{path}?{urlencode(query)}" if query else path


async def _log_facts(state: GatewayState) -> dict[str, Any]:
    latest = await state.log.latest()
    return {"origin": state.log.origin, "size": None if latest is None else latest.size}


async def _one(state: GatewayState, event_id: str) -> Any:
    """The row of one record (as the search gives it), else `None`."""
    now = datetime.datetime.now(datetime.UTC)
    flt = SearchFilter(
        start=datetime.datetime.min.replace(tzinfo=datetime.UTC),
        end=now + datetime.timedelta(days=1),
    )
    async with read_snapshot(state.engine) as conn:
        row = (await conn.execute(flt.query().where(events.c.id == event_id))).first()
        if row is None:
            return None
        shown: Sequence[Any] = await with_delivery(conn, [row])
    return shown[0]


def auditor_console_router() -> APIRouter:
    """The pages under `/kiem-tra`, for auditors signed in in the browser."""
    router = APIRouter(prefix="/kiem-tra", include_in_schema=False)

    async def search_form(
        request: Request,
        state: GatewayState,
        session: BrowserSession,
        *,
        results: list[dict[str, Any]] | None = None,
        error: GatewayError | None = None,
        next_url: str | None = None,
        searched: bool = False,
    ) -> Response:
        locale = locale_of(request)
        values = _given(request)
        filters = {k: v for k, v in values.items() if k not in _NOT_FILTERS}
        return console_page(
            request,
            session,
            "auditor/search.html",
            {
                "inputs": _inputs(values, locale),
                "limit": values.get("limit", ""),
                "results": results or [],
                "searched": searched,
                "error": error,
                "error_text": None if error is None else error_text(error, locale),
                "next_url": next_url,
                "export_url": _search_url("/kiem-tra/xuat", filters),
                "log": await _log_facts(state),
            },
            role="auditor",
            active="search",
            status_code=error.http_status if error is not None else 200,
        )

    @router.get("")
    async def search(
        request: Request,
        state: State,
        session: BrowserAuditor,
        flt: PageFilter,
        limit: Annotated[int, Query(ge=1)] = _PAGE,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Response:
        if not set(request.query_params) - {"lang", "limit"}:
            # The form, opened (perhaps with a page size): nothing searched nor recorded.
            return await search_form(request, state, session)
        if isinstance(flt, GatewayError):
            return await search_form(request, state, session, error=flt)
        refuse_cross_site(request)
        try:
            page_limit(limit, state.settings.audit_max_page)
            async with read_snapshot(state.engine) as conn:
                page = await search_page(conn, flt, limit=limit, cursor=cursor or None)
        except GatewayError as exc:
            if exc.http_status >= 500:
                raise
            return await search_form(request, state, session, error=exc)
        # Recorded before the results are shown; if it cannot be, nothing is (503).
        await record_search(
            request,
            state,
            session.identity,
            flt,
            {"results": len(page.rows), "export": False},
        )
        locale = locale_of(request)
        values = {k: v for k, v in _given(request).items() if k != "cursor"}
        return await search_form(
            request,
            state,
            session,
            results=[_result(auditor_item(r), state.catalogue, locale) for r in page.rows],
            next_url=None
            if page.next_cursor is None
            else _search_url("/kiem-tra", values, cursor=page.next_cursor),
            searched=True,
        )

    @router.get("/ban-ghi/{event_id}")
    async def record(
        request: Request, state: State, session: BrowserAuditor, event_id: str
    ) -> Response:
        locale = locale_of(request)
        row = None
        error: GatewayError
        if not _EVENT_ID.fullmatch(event_id):
            error = InvalidIdentifier("A record id is 32 lowercase hexadecimal digits.")
        else:
            row = await _one(state, event_id)
            error = NotFound("No record has this id.", kind="Access")
        if row is None:
            return console_page(
                request,
                session,
                "auditor/not_found.html",
                {"code": error.code},
                role="auditor",
                active="search",
                status_code=404,
            )
        refuse_cross_site(request)
        await record_read(
            request,
            state,
            session.identity,
            {"event": row.id},
            results=1,
            personal={"event": row.id},
        )
        item = auditor_item(row)
        envelope = read_envelope(row.envelope)
        type_msgid = TYPE_NAMES.get(row.type)
        return console_page(
            request,
            session,
            "auditor/record.html",
            {
                "item": item,
                "time": local_time(row.ts),
                "type": gettext(type_msgid, locale) if type_msgid else row.type,
                "outcome": outcome_text(row.outcome, locale),
                "shown": envelope_rows(envelope, state.catalogue, locale),
                "raw": orjson.dumps(envelope, option=orjson.OPT_INDENT_2).decode(),
                "log": await _log_facts(state),
            },
            role="auditor",
            active="search",
        )

    @router.get("/xuat")
    async def export(
        request: Request,
        state: State,
        session: BrowserAuditor,
        flt: PageFilter,
        checkpoint: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    ) -> Response:
        if isinstance(flt, GatewayError):
            return await search_form(request, state, session, error=flt)
        try:
            signed = await state.log.export_checkpoint(
                state.settings.cosignatures_needed, checkpoint, state.settings.witness_names
            )
            if signed is None:
                raise NotFound("No checkpoint has been signed yet.", kind="Checkpoint")
        except GatewayError as exc:
            if exc.http_status >= 500:
                raise
            return await search_form(request, state, session, error=exc)
        refuse_cross_site(request)
        await record_search(
            request, state, session.identity, flt, {"export": True, "checkpoint": signed.size}
        )
        return StreamingResponse(
            export_lines(state, flt, signed),
            media_type="application/x-ndjson",
            headers={
                "Content-Disposition": 'attachment; filename="access-records.jsonl"',
                "Cache-Control": "no-store",
            },
        )

    return router
