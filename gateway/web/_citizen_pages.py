"""The citizen's pages, "Dữ liệu của tôi": who read my data, receipts, questions, consents.

    GET  /toi                               who read my data (filters: from, to, organisation)
    GET  /toi/truy-cap/{id}                 one access, with its receipt and a question form
    GET  /toi/truy-cap/{id}/bien-nhan       a printable receipt the browser verifies itself
    GET  /toi/truy-cap/{id}/tai-bien-nhan   the receipt: the bytes `/me/accesses/{id}/receipt` gives
    POST /toi/truy-cap/{id}/hoi             ask the organisation about this access (recorded)
    POST /toi/thong-bao                     a daily digest of the reads of my data, or none
    GET  /toi/du-lieu                       what the connected databases hold about me
    GET  /toi/dong-y                        consent requests, consents in force, history
    POST /toi/dong-y/{id}/{approve|deny|revoke}

The pages decide as the JSON routes under `/me` do, through the same functions: the
accesses are `citizen_items` of the same search, consents change through the same
`ConsentStore` calls with the same `consent` events. Every page needs a level-2
sign-in, as every `/me` route does. Another citizen's access or consent answers 404,
as if it did not exist; nothing is changed.

A question is recorded as an `admin` event with the action `citizen_question`: the
envelope names the system asked about (a public client id) and the organisation, the
personal part (sealed under the citizen's key, found through the subject index) holds
the citizen's id, the access and the question. An auditor's answer
(`citizen_question_answered`, `gateway.records._questions`) is shown under the question
on the access's page. Organisation contacts come from `_CONTACTS` (sandbox data: no
registry holds agencies' contacts yet).

"My data" is read as any client reads: the gateway's own citizen portal is a registered
client (`PORTAL_CLIENT`, registered with a local key at its first use) that signs a
request token for the procedure `LOCAL.citizen-self-service`, the signed-in citizen as
its only subject and officer `citizen-self-service`; the request is admitted, decided,
executed against the schema and recorded exactly as `/graphql` does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Final
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from gateway.admission import add_local_key, has_local_key, load_local_key, sign_request
from gateway.errors import Conflict, GatewayError, NotFound
from gateway.instants import VIETNAM, vietnam_time
from gateway.notifications import read_digest_enabled, set_read_digest
from gateway.records import (
    CITIZEN_VISIBLE_TYPES,
    EnvelopeBody,
    Event,
    SearchFilter,
    admin_recorder,
    citizen_items,
    citizen_questions,
    consent_event,
    search_page,
)
from gateway.state import GatewayState, State
from gateway.storage import events, read_snapshot
from gateway.web._citizen_routes import access_receipt
from gateway.web._i18n import enum_label, field_label, legal_basis_text, locale_of, render
from gateway.web._sessions import (
    LEVEL2_FRESHNESS,
    BrowserCitizen,
    BrowserCitizenLevel2,
    BrowserSession,
    SignInRequired,
    check_csrf,
)
from policies import ORGANISATION_NAMES, Catalogue, Consent, Purpose, UnknownProcedure
from schema import RequestContext, SchemaLimits, build_schema

__all__ = ["PORTAL_CLIENT", "QUESTION_ACTION", "SELF_SERVICE", "citizen_pages_router"]

PORTAL_CLIENT: Final = "VN/GOV/GATEWAY/cong-cong-dan"
"""The client id of the gateway's own citizen portal."""
SELF_SERVICE: Final = "LOCAL.citizen-self-service"
"""The procedure a citizen reads their own data under."""
_SELF_OFFICER: Final = "citizen-self-service"
_SELF_FIELDS: Final = (
    "personalId fullName otherNames birthDate gender hometown nationality maritalStatus "
    "permanentResidence { provinceName wardName detail } "
    "temporaryResidence { provinceName wardName detail } "
    "currentResidence { provinceName wardName detail }"
)
_ENUMS: Final = {"gender": "Gender", "maritalStatus": "MaritalStatus"}

QUESTION_ACTION: Final = "citizen_question"
"""The `admin` action (and outcome) of a citizen's question about one access."""
_QUESTION_MAX: Final = 2000
_PAGE: Final = 100

_CONTACTS: Final[Mapping[str, Mapping[str, str]]] = {
    # Sandbox contacts, by the `VN/GOV/<org>` prefix of a client id: illustrative
    # addresses under example domains, until organisations register their own.
    "VN/GOV/BCA": {"email": "hoidap@bca.example.gov.vn", "phone": "069 000 0000"},
    "VN/GOV/BTP": {"email": "hoidap@btp.example.gov.vn", "phone": "024 000 0001"},
    "VN/GOV/BNNMT": {"email": "hoidap@bnnmt.example.gov.vn", "phone": "024 000 0002"},
    "VN/GOV/BHXH": {"email": "hoidap@bhxh.example.gov.vn", "phone": "1900 0000"},
}
_DEFAULT_CONTACT: Final = {"email": "hoidap@cong.example.gov.vn", "phone": "1900 0001"}


def _org_code(client_id: str | None) -> str | None:
    if not client_id:
        return None
    parts = client_id.split("/")
    return "/".join(parts[:3]) if len(parts) >= 3 else None


def contact_of(client_id: str | None, organisation: str | None) -> dict[str, Any]:
    """The contact a citizen asks about an access: the organisation and how to reach it."""
    code = _org_code(client_id)
    found = _CONTACTS.get(code or "", _DEFAULT_CONTACT)
    names = ORGANISATION_NAMES.get(code or "")
    return {
        "organisation": organisation or (names[0] if names else code),
        "email": found["email"],
        "phone": found["phone"],
        "sandbox": True,
    }


def _labelled(item: dict[str, Any], locale: str, catalogue: Catalogue) -> dict[str, Any]:
    """An item of `citizen_items` with its fields, withheld fields and grounds in plain words."""
    shown = dict(item)
    procedure_code = (item.get("procedure") or {}).get("code")
    laws: list[str] = []
    if procedure_code and any(b.get("kind") == "law" for b in item.get("basis") or ()):
        try:
            laws = [legal_basis_text(b, locale) for b in catalogue.get(procedure_code).legal_basis]
        except UnknownProcedure:
            laws = []
    shown["lawTexts"] = laws
    shown["fieldLabels"] = [field_label(p, locale) for p in item.get("fields") or ()]
    shown["unansweredLabels"] = [field_label(p, locale) for p in item.get("unanswered") or ()]
    shown["withheldLabels"] = [
        {"label": field_label(w["field"], locale), "code": w["code"]}
        for w in item.get("withheld") or ()
    ]
    procedure = item.get("procedure") or {}
    name = procedure.get("name") if isinstance(procedure, dict) else None
    shown["procedureName"] = (
        (name or {}).get(locale)
        or (name or {}).get("vi")
        or (procedure.get("code") if isinstance(procedure, dict) else None)
    )
    officer = item.get("officer") or {}
    role = officer.get("role") if isinstance(officer, dict) else None
    shown["officerText"] = officer.get("name") if isinstance(officer, dict) else None
    if shown["officerText"] is None and isinstance(role, dict):
        shown["officerText"] = role.get(locale) or role.get("vi")
    dossier = item.get("dossier")
    if isinstance(dossier, dict) and isinstance(dossier.get("receivedOn"), str):
        shown["dossier"] = {**dossier, "receivedOn": _day(dossier["receivedOn"], locale)}
    local = datetime.datetime.fromisoformat(str(item["time"])).astimezone(VIETNAM)
    shown["date"] = local.date().isoformat()
    shown["dateText"] = local.strftime("%d/%m/%Y")
    shown["when"] = vietnam_time(local)
    return shown


async def _accesses(
    state: GatewayState,
    subject: str,
    *,
    start: str | None,
    end: str | None,
) -> list[dict[str, Any]]:
    """The citizen's accesses, newest first: the search `/me/accesses` makes."""
    built = SearchFilter.build(
        start=start,
        end=end,
        max_days=state.settings.audit_max_range_days,
        pseudonym_key=state.pseudonym_key,
    )
    flt = dataclasses.replace(
        built,
        subject=subject,
        types=CITIZEN_VISIBLE_TYPES,
        visible_at=datetime.datetime.now(datetime.UTC),
    )
    async with read_snapshot(state.engine) as conn:
        page = await search_page(conn, flt, limit=_PAGE, cursor=None)
        return await citizen_items(conn, page.rows, subject, state.catalogue)


def _one_filter(subject: str) -> SearchFilter:
    now = datetime.datetime.now(datetime.UTC)
    return SearchFilter(
        start=datetime.datetime.min.replace(tzinfo=datetime.UTC),
        end=now + datetime.timedelta(days=1),
        subject=subject,
        types=CITIZEN_VISIBLE_TYPES,
        visible_at=now,
    )


async def _access(state: GatewayState, subject: str, event_id: str) -> tuple[Any, dict[str, Any]]:
    """One of the citizen's accesses (its row and its item), else `NotFound`."""
    async with read_snapshot(state.engine) as conn:
        row = (
            await conn.execute(_one_filter(subject).query().where(events.c.id == event_id))
        ).first()
        if row is None:
            raise NotFound("None of your accesses has this id.", kind="Access")
        items = await citizen_items(conn, [row], subject, state.catalogue)
    return row, items[0]


def _local(instant: str | None) -> str | None:
    """An RFC 3339 instant as Vietnam's time reads it: `HH:MM, DD/MM/YYYY`."""
    if not instant:
        return None
    return vietnam_time(datetime.datetime.fromisoformat(instant))


def _consent_shown(
    state: GatewayState,
    consent: Consent,
    locale: str,
    systems: Mapping[str, tuple[str, str]],
) -> dict[str, Any]:
    body = consent.public()
    for key in ("answerBy", "validUntil", "requestedAt", "revokedAt"):
        body[f"{key}Text"] = _local(body.get(key))
    try:
        entry = state.catalogue.get(consent.procedure)
        body["procedureName"] = entry.name.vi if locale == "vi" else entry.name.en
    except UnknownProcedure:
        body["procedureName"] = consent.procedure
    body["fieldLabels"] = [field_label(p, locale) for p in consent.fields]
    names = ORGANISATION_NAMES.get(_org_code(consent.consumer) or "")
    organisation, system = systems.get(consent.consumer, (names[0] if names else "", ""))
    body["consumerName"] = organisation or consent.consumer
    body["consumerSystem"] = system
    return body


async def _pending(state: GatewayState, subject: str) -> int:
    return len(await state.consents.of_subject(subject, status="REQUESTED"))


def _question_shown(question: dict[str, Any]) -> dict[str, Any]:
    """A question of the citizen's, and its answers, with times as Vietnam reads them."""
    return {
        **question,
        "when": vietnam_time(question["time"]),
        "answers": [{**a, "when": vietnam_time(a["time"])} for a in question["answers"]],
    }


def question_event(
    *,
    request_id: str,
    policy_version: str,
    subject: str,
    access: dict[str, Any],
    question: str,
) -> Event:
    """The `admin` record of a citizen's question about one of their accesses.

    The envelope names the system asked about and its organisation (public), never the
    citizen, the access or the question: those are in the sealed personal part.
    """
    system = access.get("system") or {}
    client_id = system.get("id") if isinstance(system, dict) else None
    envelope: EnvelopeBody = {"action": QUESTION_ACTION, "actor": "citizen"}
    if isinstance(client_id, str):
        envelope["client"] = client_id
    return Event(
        type="admin",
        request_id=request_id,
        outcome=QUESTION_ACTION,
        policy_version=policy_version,
        envelope=envelope,
        personal={"subject": subject, "access": access["id"], "question": question},
        subjects=[subject],
        client_id=client_id,
    )


async def _level2(request: Request, session: BrowserCitizen) -> BrowserSession:
    """A citizen signed in at level 2, as every `/me` route needs (not necessarily lately:
    a change of consent asks for a recent proof, `BrowserCitizenLevel2`)."""
    settings = getattr(getattr(request.app.state, "gateway", None), "settings", None)
    accepted = getattr(settings, "oidc_level2_acr", ())
    if not session.identity.has_level2(accepted):
        raise SignInRequired(next=request.url.path, level=2)
    return session


Level2Session = Annotated[BrowserSession, Depends(_level2)]
"""The session of a citizen signed in at level 2."""


async def _portal_key(state: GatewayState) -> tuple[Any, str]:
    """The portal's signing key, registering the portal as a client at its first use."""
    directory = state.settings.client_keys_dir
    if not has_local_key(directory, PORTAL_CLIENT):
        record = admin_recorder(
            pseudonym_key=state.pseudonym_key,
            policy_version=state.catalogue.version,
            operator="gateway:citizen-portal",
            operator_org=None,
        )
        kinds = list(state.catalogue.get(SELF_SERVICE).agency_kinds)
        with contextlib.suppress(Conflict):  # another replica registered it first
            await state.clients.add(
                PORTAL_CLIENT,
                name="Citizen portal",
                organisation="Data-sharing gateway",
                agency_kinds=kinds,
                record=record,
            )
        await add_local_key(state.clients, directory, PORTAL_CLIENT, record=record)
    key, kid = load_local_key(directory, PORTAL_CLIENT)
    return key, kid


async def _my_data(
    request: Request, state: GatewayState, schema: Any, subject: str
) -> tuple[dict[str, Any] | None, list[str]]:
    """Read the citizen's record as the portal, recorded like any read: data and error codes."""
    query = f'{{ citizen(personalId: "{subject}") {{ {_SELF_FIELDS} }} }}'
    raw = orjson.dumps({"query": query})
    key, kid = await _portal_key(state)
    token = sign_request(
        client_id=PORTAL_CLIENT,
        key=key,
        kid=kid,
        audience=state.settings.origin,
        body=raw,
        purpose=Purpose(SELF_SERVICE, f"self-{uuid.uuid4().hex[:12]}", _SELF_OFFICER, (subject,)),
    )
    request_id = getattr(request.state, "request_id", None) or uuid.uuid4().hex
    admitted = await state.admission.admit(request_id, f"Bearer {token}", raw)
    with state.live.hold() as served:
        ctx = RequestContext(
            registry=served.registry,
            fetch=admitted.fetch,
            max_batch=state.settings.max_batch,
            access=admitted.access,
            services=state.services_for(admitted.catalogue),
            versions=served.versions,
        )
        result = await schema.execute(query, context_value=ctx)
        codes = sorted(
            {str((e.extensions or {}).get("code", "UNKNOWN")) for e in result.errors or ()}
        )
        # Recorded before anything is shown; if it cannot be, nothing is (503).
        await state.admission.record(
            admitted, ctx, outcome="ok", status=200, operation=None, error_codes=codes
        )
    data = (result.data or {}).get("citizen")
    return data, codes


def _shown_data(data: dict[str, Any], locale: str) -> list[dict[str, Any]]:
    """The citizen's record as label and value lines, in the page's language."""
    rows: list[dict[str, Any]] = []
    for name, value in data.items():
        path = f"Citizen.{name}"
        if value is None or value == []:
            continue
        if isinstance(value, dict):
            text = ", ".join(
                str(v) for k in ("detail", "wardName", "provinceName") if (v := value.get(k))
            )
        elif isinstance(value, list):
            text = ", ".join(str(v) for v in value)
        elif name in _ENUMS:
            text = enum_label(_ENUMS[name], str(value), locale)
        else:
            text = _day(str(value), locale)
        rows.append({"label": field_label(path, locale), "value": text, "path": path})
    return rows


def _day(text: str, locale: str) -> str:
    """A date (`1987-06-05`) as people write it in the page's language (`05/06/1987`)."""
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        return text
    if len(text) != 10:
        return text  # only plain ISO dates, not other text that happens to parse
    return day.strftime("%d/%m/%Y") if locale == "vi" else day.isoformat()


def citizen_pages_router() -> APIRouter:
    """The pages under `/toi`, for the citizen signed in in the browser at level 2."""
    router = APIRouter(prefix="/toi", include_in_schema=False)
    schemas: list[Any] = []

    def schema_of(state: GatewayState) -> Any:
        if not schemas:
            settings = state.settings
            schemas.append(
                build_schema(
                    SchemaLimits(
                        max_depth=settings.max_depth,
                        max_aliases=settings.max_aliases,
                        max_tokens=settings.max_tokens,
                        parser_cache_size=settings.parser_cache_size,
                        introspection=False,
                    )
                )
            )
        return schemas[0]

    async def page(
        request: Request,
        state: GatewayState,
        session: BrowserSession,
        name: str,
        context: dict[str, Any],
        status_code: int = 200,
    ) -> Response:
        base = {
            "session": session,
            "csrf": session.csrf_token,
            "pending": await _pending(state, session.identity.subject),
        }
        return render(request, name, {**base, **context}, status_code=status_code)

    async def refused(
        request: Request, state: GatewayState, session: BrowserSession, exc: GatewayError
    ) -> Response:
        return await page(
            request,
            state,
            session,
            "toi/not_found.html",
            {"code": exc.code},
            status_code=exc.http_status,
        )

    @router.get("")
    async def accesses(
        request: Request,
        state: State,
        session: Level2Session,
        start: Annotated[str | None, Query(alias="from", max_length=40)] = None,
        end: Annotated[str | None, Query(alias="to", max_length=40)] = None,
        organisation: Annotated[str | None, Query(max_length=300)] = None,
    ) -> Response:
        locale = locale_of(request)
        error = None
        try:
            items = await _accesses(
                state, session.identity.subject, start=start or None, end=end or None
            )
        except GatewayError as exc:
            items, error = [], exc.code
        shown = [_labelled(i, locale, state.catalogue) for i in items]
        organisations = sorted({i["organisation"] for i in shown if i.get("organisation")})
        if organisation:
            shown = [i for i in shown if i.get("organisation") == organisation]
        days: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for item in shown:
            days.setdefault((item["date"], item["dateText"]), []).append(item)
        return await page(
            request,
            state,
            session,
            "toi/accesses.html",
            {
                "days": days,
                "organisations": organisations,
                "filters": {"from": start or "", "to": end or "", "organisation": organisation},
                "error": error,
                "read_digest": await read_digest_enabled(
                    state.engine, state.notify_seal, session.identity.subject
                ),
                "notify_saved": request.query_params.get("thong-bao") == "1",
            },
        )

    @router.post("/thong-bao")
    async def notifications(
        request: Request,
        state: State,
        session: Level2Session,
        read_digest: Annotated[str | None, Form(max_length=1)] = None,
    ) -> Response:
        await check_csrf(request, session)
        await set_read_digest(
            state.engine, state.notify_seal, session.identity.subject, read_digest == "1"
        )
        return RedirectResponse("/toi?thong-bao=1#thong-bao", status_code=303)

    @router.get("/truy-cap/{event_id}")
    async def access(
        request: Request, state: State, session: Level2Session, event_id: str
    ) -> Response:
        try:
            _row, item = await _access(state, session.identity.subject, event_id)
        except NotFound as exc:
            return await refused(request, state, session, exc)
        system = item.get("system") or {}
        async with read_snapshot(state.engine) as conn:
            # The citizen's questions about this access, with the auditors' answers.
            asked = await citizen_questions(conn, session.identity.subject, event_id)
        return await page(
            request,
            state,
            session,
            "toi/access.html",
            {
                "item": _labelled(item, locale_of(request), state.catalogue),
                "contact": contact_of(system.get("id"), item.get("organisation")),
                "asked": request.query_params.get("da-hoi") == "1",
                "questions": [_question_shown(q) for q in asked],
            },
        )

    @router.get("/truy-cap/{event_id}/tai-bien-nhan")
    async def receipt(
        request: Request, state: State, session: Level2Session, event_id: str
    ) -> Response:
        try:
            row, _item = await _access(state, session.identity.subject, event_id)
            text = await access_receipt(state, row)
        except (NotFound, Conflict) as exc:
            return await refused(request, state, session, exc)
        return Response(
            text,
            media_type="text/plain; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="access-{row.id}.tlog-proof"',
                "Cache-Control": "no-store",
            },
        )

    @router.get("/truy-cap/{event_id}/bien-nhan")
    async def receipt_page(
        request: Request, state: State, session: Level2Session, event_id: str
    ) -> Response:
        try:
            row, item = await _access(state, session.identity.subject, event_id)
        except NotFound as exc:
            return await refused(request, state, session, exc)
        return await page(
            request,
            state,
            session,
            "toi/receipt.html",
            {
                "item": _labelled(item, locale_of(request), state.catalogue),
                "inCheckpoint": row.leaf_index is not None,
                "origin": state.log.origin,
            },
        )

    @router.post("/truy-cap/{event_id}/hoi")
    async def ask(
        request: Request,
        state: State,
        session: Level2Session,
        event_id: str,
        question: Annotated[str, Form(min_length=1, max_length=_QUESTION_MAX)],
    ) -> Response:
        await check_csrf(request, session)
        subject = session.identity.subject
        try:
            _row, item = await _access(state, subject, event_id)
        except NotFound as exc:
            return await refused(request, state, session, exc)
        await state.recorder.record(
            question_event(
                request_id=getattr(request.state, "request_id", None) or "",
                policy_version=state.catalogue.version,
                subject=subject,
                access=item,
                question=question.strip(),
            )
        )
        return RedirectResponse(f"/toi/truy-cap/{event_id}?da-hoi=1", status_code=303)

    @router.get("/du-lieu")
    async def my_data(request: Request, state: State, session: Level2Session) -> Response:
        locale = locale_of(request)
        data, codes = await _my_data(request, state, schema_of(state), session.identity.subject)
        return await page(
            request,
            state,
            session,
            "toi/data.html",
            {"rows": _shown_data(data or {}, locale), "codes": codes},
        )

    @router.get("/dong-y")
    async def consents(request: Request, state: State, session: Level2Session) -> Response:
        locale = locale_of(request)
        found = await state.consents.of_subject(session.identity.subject)
        systems = await state.clients.names({c.consumer for c in found})
        shown = [_consent_shown(state, c, locale, systems) for c in found]
        return await page(
            request,
            state,
            session,
            "toi/consents.html",
            {
                "requested": [c for c in shown if c["status"] == "REQUESTED"],
                "in_force": [c for c in shown if c["status"] == "ACTIVE"],
                "history": [c for c in shown if c["status"] not in {"REQUESTED", "ACTIVE"}],
                "done": request.query_params.get("xong"),
                # Answering needs a recent level-2 proof: without one, the page offers
                # the step-up sign-in, which comes back here, instead of the buttons.
                "fresh": session.level2_within(
                    LEVEL2_FRESHNESS, datetime.datetime.now(datetime.UTC)
                ),
                "step_up": "/dang-nhap?" + urlencode({"next": "/toi/dong-y", "muc": "2"}),
            },
        )

    @router.post("/dong-y/{consent_id}/{action}")
    async def answer(
        request: Request,
        state: State,
        session: BrowserCitizenLevel2,
        consent_id: str,
        action: str,
    ) -> Response:
        await check_csrf(request, session)
        identity = session.identity
        changes = {
            "approve": (state.consents.approve, "approved"),
            "deny": (state.consents.deny, "denied"),
            "revoke": (state.consents.revoke, "revoked"),
        }
        if action not in changes:
            return await refused(request, state, session, NotFound("No such action."))
        change, recorded = changes[action]
        request_id = getattr(request.state, "request_id", None) or ""

        def record(consent: Consent) -> Event:
            return consent_event(
                consent,
                recorded,
                request_id=request_id,
                policy_version=state.catalogue.version,
                actor="citizen",
                acr=identity.acr,
            )

        try:
            await change(consent_id, identity.subject, record=record)
        except GatewayError as exc:
            if exc.http_status >= 500:
                raise
            return await refused(request, state, session, exc)
        return RedirectResponse(f"/toi/dong-y?xong={recorded}", status_code=303)

    return router
