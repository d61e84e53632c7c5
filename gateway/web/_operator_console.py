"""The operator's dashboard (the IOC view): figures over time, sources and the log,
client systems, connector approvals.

```
GET  /van-hanh                      overview: requests, fields served and papers
                                    avoided per day (last 14 days, or `from`/`to`),
                                    per procedure and agency; refusals; consents
GET  /van-hanh/nguon                each source's health, breaker, latency and errors
                                    (this replica's), the access log and its checkpoint
GET  /van-hanh/he-thong             client systems and their status
POST /van-hanh/he-thong/trang-thai  suspend or reinstate one (`client_id`, `status`)
GET  /van-hanh/phe-duyet            connector versions awaiting approval, with dry runs
POST /van-hanh/phe-duyet/{name}/{version}/chay-thu | duyet | tu-choi
```

Operators act for their organisation, as on the JSON routes (`/admin/clients`,
`/admin/stats`, `/admin/connectors`): a platform operator sees every client and its
figures, any other only the clients under their organisation (`operator_scope`). A
change is made by the same function as its JSON route, with the same `admin` record,
then the page is shown again with a notice; a refusal is shown with its stable code.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Final
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Form, Path, Query, Request
from starlette.responses import RedirectResponse, Response

from connectors._metrics import RECENT_CALLS
from gateway.errors import GatewayError, InvalidArgument
from gateway.instants import VIETNAM, parse_instant
from gateway.records import daily_figures, figures
from gateway.state import GatewayState, State
from gateway.storage import log_checkpoints
from gateway.web._admin_routes import client_change_recorder, may_act_on, operator_scope
from gateway.web._connector_routes import (
    approve_version,
    dry_run_version,
    pending_versions,
    reject_version,
)
from gateway.web._consoles import console_page
from gateway.web._health import access_log_status, connector_health
from gateway.web._i18n import gettext, locale_of, procedure_name
from gateway.web._labels import N_
from gateway.web._sessions import BrowserOperator, BrowserSession, check_csrf

__all__ = [
    "DEFAULT_DAYS",
    "chart_data",
    "days_between",
    "operator_console_router",
    "period_of",
    "totals_of",
]

DEFAULT_DAYS: Final = 14
"""Days the overview shows without `from`/`to` (today in Vietnam and the 13 before)."""
MAX_DAYS: Final = 366
"""The longest period the overview charts."""
MAX_SERIES: Final = 6
"""Procedure-and-agency lines on the requests chart; the rest are summed as "others"."""

_NAME = r"^[a-z0-9][a-z0-9-]{1,39}$"

# What a refusal means, for staff (the code is shown beside it).
_CODE_TEXT: Final[Mapping[str, str]] = {
    "FORBIDDEN": N_("Your role or organisation does not allow this."),
    "CONFLICT": N_("This is no longer possible in its present state; reload the page."),
    "NOT_FOUND": N_("It was not found: it may have been removed meanwhile."),
    "INVALID_ARGUMENT": N_("A value given is not valid."),
    "INVALID_MANIFEST": N_("The connector's manifest is not valid."),
    "CSRF_FAILED": N_("The form has expired or did not come from this site; reload the page."),
    "AUDIT_UNAVAILABLE": N_("The change could not be recorded, so it was not made."),
    "UNAUTHENTICATED": N_("Sign in again."),
}
_FOUR_EYES: Final = N_(
    "Four eyes: who submitted a version cannot approve it; another operator must."
)
_PLATFORM_ONLY: Final = N_(
    "Only an operator of the platform's organisation approves or rejects connector versions."
)

_NOTICES: Final[Mapping[str, str]] = {
    "suspended": N_("The client system is suspended: its next request is refused."),
    "active": N_("The client system is active again."),
    "approved": N_("The version is approved and now serves."),
    "rejected": N_("The version is rejected."),
    "dry_run": N_("The dry run is done: its report is below."),
}

_CONSENT_ACTIONS: Final[Mapping[str, str]] = {
    "requested": N_("Asked of the citizen"),
    "approved": N_("Given"),
    "denied": N_("Refused by the citizen"),
    "revoked": N_("Withdrawn"),
    "expired": N_("Expired"),
}
_SAMPLE_KEY: Final = re.compile(r"[A-Za-z0-9_./-]{1,128}")
"""A dry run's sample key, as the JSON route takes it."""
_OUTCOMES: Final[Mapping[str, str]] = {
    "ok": N_("mapped"),
    "missing": N_("no value in this record"),
    "unmapped": N_("not in the source"),
    "type_mismatch": N_("value cannot be mapped"),
    "not_checked": N_("not checked"),
    "error": N_("error"),
}


# -- pure helpers (unit-tested) ------------------------------------------------------------


def period_of(
    start: str | None, end: str | None, now: datetime.datetime
) -> tuple[datetime.datetime, datetime.datetime]:
    """The overview's `[since, until)`: the days given (in Vietnam's time, `to` included),
    else today in Vietnam and the `DEFAULT_DAYS - 1` days before, until `now`."""
    until = parse_instant(end, "to", end_of_day=True) if end else now
    if start:
        since = parse_instant(start, "from")
    else:
        last = (until - datetime.timedelta(microseconds=1)).astimezone(VIETNAM).date()
        first = last - datetime.timedelta(days=DEFAULT_DAYS - 1)
        since = datetime.datetime.combine(first, datetime.time(), VIETNAM).astimezone(datetime.UTC)
    if since >= until:
        raise InvalidArgument("`from` must be before `to`.", argument="from")
    if until - since > datetime.timedelta(days=MAX_DAYS):
        raise InvalidArgument(
            f"The overview spans at most {MAX_DAYS} days.", argument="from", maxDays=MAX_DAYS
        )
    return since, until


def days_between(since: datetime.datetime, until: datetime.datetime) -> list[str]:
    """Every day (Vietnam's time, `YYYY-MM-DD`) that [since, until) touches."""
    first = since.astimezone(VIETNAM).date()
    last = (until - datetime.timedelta(microseconds=1)).astimezone(VIETNAM).date()
    return [
        (first + datetime.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)
    ]


def _label(row: Mapping[str, Any]) -> str:
    return f"{row.get('procedure') or '-'} · {row.get('organisation') or '-'}"


def chart_data(
    rows: Iterable[Mapping[str, Any]], days: list[str], *, others: str = "others"
) -> dict[str, Any]:
    """The charts' data from `daily_figures` rows: per day, the requests of each
    procedure and agency (the `MAX_SERIES` busiest, the rest summed as `others`), and
    the totals of fields served, papers avoided, refusals and consent events."""
    index = {day: n for n, day in enumerate(days)}
    totals = {k: [0] * len(days) for k in ("fieldsServed", "papersAvoided", "refused", "consents")}
    per: dict[str, list[int]] = {}
    for row in rows:
        n = index.get(str(row["day"]))
        if n is None:
            continue
        for key, values in totals.items():
            values[n] += int(row.get(key) or 0)
        if row.get("requests"):
            per.setdefault(_label(row), [0] * len(days))[n] += int(row["requests"])
    ranked = sorted(per.items(), key=lambda item: (-sum(item[1]), item[0]))
    kept = ranked[:MAX_SERIES]
    rest = ranked[MAX_SERIES:]
    if rest:
        kept.append((others, [sum(values[n] for _, values in rest) for n in range(len(days))]))
    series = [{"label": label, "values": values} for label, values in kept]
    requests = [sum(values[n] for _, values in kept) for n in range(len(days))]
    return {"days": days, "requests": series, "requestsTotal": requests, **totals}


def totals_of(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The period's totals from `figures` rows: requests, fields, papers, refusals by
    code, consent events by action, denials by code (each sorted by count)."""
    total: dict[str, Any] = {"requests": 0, "fieldsServed": 0, "papersAvoided": 0}
    refused: dict[str, int] = {}
    consents: dict[str, int] = {}
    denials: dict[str, int] = {}
    for row in rows:
        for key in ("requests", "fieldsServed", "papersAvoided"):
            total[key] += int(row.get(key) or 0)
        for into, key in ((refused, "refused"), (consents, "consents"), (denials, "denials")):
            for code, count in (row.get(key) or {}).items():
                into[code] = into.get(code, 0) + int(count)

    def ranked(counts: dict[str, int]) -> list[tuple[str, int]]:
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))

    return {
        **total,
        "refused": ranked(refused),
        "refusedTotal": sum(refused.values()),
        "consents": ranked(consents),
        "consentsTotal": sum(consents.values()),
        "denials": ranked(denials),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _notice(done: str | None, locale: str) -> str | None:
    """The notice of a change just made (`?xong=`), in the page's language."""
    if done is None or done not in _NOTICES:
        return None
    return gettext(_NOTICES[done], locale)


def _error_view(exc: GatewayError, locale: str) -> dict[str, Any]:
    """A refusal as the page shows it: its code and what it means, in the page's language."""
    if exc.code == "FORBIDDEN" and exc.detail.get("reason") == "submitter":
        text = gettext(_FOUR_EYES, locale)
    elif exc.code == "FORBIDDEN" and "platform" in exc.message:
        text = gettext(_PLATFORM_ONLY, locale)
    elif exc.code in _CODE_TEXT:
        text = gettext(_CODE_TEXT[exc.code], locale)
    else:
        text = gettext(N_("The action was refused."), locale)
    argument = exc.detail.get("argument")
    return {
        "code": exc.code,
        "text": text,
        "status": exc.http_status,
        "argument": argument if isinstance(argument, str) else None,
    }


# -- the pages ------------------------------------------------------------------------------


async def _newest_checkpoint(state: GatewayState) -> dict[str, Any] | None:
    try:
        async with state.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(
                        log_checkpoints.c.size, log_checkpoints.c.root, log_checkpoints.c.signed_at
                    )
                    .order_by(log_checkpoints.c.size.desc())
                    .limit(1)
                )
            ).first()
    except Exception as exc:  # the page still shows the rest; the type says what failed
        return {"error": type(exc).__name__}
    if row is None:
        return None
    return {
        "size": int(row.size),
        "root": bytes(row.root).hex(),
        "signedAt": _local(row.signed_at),
    }


def _local(instant: datetime.datetime | None) -> str | None:
    if instant is None:
        return None
    return instant.astimezone(VIETNAM).strftime("%Y-%m-%d %H:%M:%S")


def _local_text(instant: Any) -> Any:
    """An RFC 3339 instant as Vietnam's local time (to the second); anything else as is."""
    if not isinstance(instant, str):
        return instant
    try:
        return _local(datetime.datetime.fromisoformat(instant.replace("Z", "+00:00")))
    except ValueError:
        return instant


def _version_shown(version: Mapping[str, Any]) -> dict[str, Any]:
    """A pending version with its instants in Vietnam's time."""
    shown = dict(version)
    for key in ("submittedAt", "approvedAt"):
        shown[key] = _local_text(shown.get(key))
    run = shown.get("lastDryRun")
    if isinstance(run, Mapping):
        shown["lastDryRun"] = {**run, "ranAt": _local_text(run.get("ranAt"))}
    return shown


def _sources(health: Mapping[str, Any]) -> list[dict[str, Any]]:
    shown = []
    for name, h in sorted(health.items()):
        calls, failed = RECENT_CALLS.last(name)
        p50, p95 = RECENT_CALLS.percentiles(name)
        shown.append(
            {
                "name": name,
                "ok": h.get("ok"),
                "detail": h.get("detail"),
                "checkMs": None if h.get("latencyMs") is None else round(h["latencyMs"], 1),
                "version": h.get("version"),
                "breaker": h.get("breaker") or "none",
                "calls": calls,
                "failed": failed,
                "errorRate": None if not calls else round(100 * failed / calls, 1),
                "p50": _ms(p50),
                "p95": _ms(p95),
            }
        )
    return shown


def _back(path: str, **query: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode(query)}" if query else path, status_code=303)


def operator_console_router() -> APIRouter:
    """The pages under `/van-hanh`."""
    router = APIRouter(prefix="/van-hanh", include_in_schema=False)

    @router.get("")
    async def overview(
        request: Request,
        state: State,
        session: BrowserOperator,
        start: Annotated[str | None, Query(alias="from", max_length=40)] = None,
        end: Annotated[str | None, Query(alias="to", max_length=40)] = None,
    ) -> Response:
        locale = locale_of(request)
        now = datetime.datetime.now(datetime.UTC)
        context: dict[str, Any] = {
            "from": start or "",
            "to": end or "",
            "error": None,
            "consent_actions": _CONSENT_ACTIONS,
        }
        try:
            scope = operator_scope(state, session.identity)
            since, until = period_of(start or None, end or None, now)
            rows = await figures(state.engine, since, until, clients_under=scope)
            daily = await daily_figures(state.engine, since, until, clients_under=scope)
        except GatewayError as exc:
            if exc.http_status >= 500:
                raise
            context["error"] = _error_view(exc, locale)
            return console_page(
                request,
                session,
                "operator/overview.html",
                context,
                role="operator",
                active="overview",
                status_code=exc.http_status,
            )
        days = days_between(since, until)
        charts = chart_data(daily, days, others=gettext(N_("Others"), locale))
        known = state.catalogue.procedures
        names = {
            r["procedure"]: procedure_name(known[r["procedure"]], locale)
            for r in rows
            if r["procedure"] in known
        }
        context.update(
            scope=scope,
            since=days[0],
            until=days[-1],
            days=days,
            rows=rows,
            names=names,
            totals=totals_of(rows),
            charts=charts,
            daily=[
                {
                    "day": day,
                    "requests": charts["requestsTotal"][n],
                    "fieldsServed": charts["fieldsServed"][n],
                    "papersAvoided": charts["papersAvoided"][n],
                    "refused": charts["refused"][n],
                    "consents": charts["consents"][n],
                }
                for n, day in enumerate(days)
            ],
            busiest=max(range(len(days)), key=lambda n: charts["requestsTotal"][n], default=None),
        )
        return console_page(
            request, session, "operator/overview.html", context, role="operator", active="overview"
        )

    @router.get("/nguon")
    async def sources(request: Request, state: State, session: BrowserOperator) -> Response:
        health = await connector_health(state)
        context = {
            "sources": _sources(health),
            "log": await access_log_status(state),
            "checkpoint": await _newest_checkpoint(state),
            "live": state.live.report(),
            "now": _local(datetime.datetime.now(datetime.UTC)),
        }
        return console_page(
            request, session, "operator/sources.html", context, role="operator", active="sources"
        )

    async def clients_page(
        request: Request,
        state: GatewayState,
        session: BrowserSession,
        *,
        error: dict[str, Any] | None = None,
        notice: str | None = None,
        changed: str | None = None,
        status_code: int = 200,
    ) -> Response:
        locale = locale_of(request)
        listed: list[dict[str, Any]] = []
        scope = None
        try:
            scope = operator_scope(state, session.identity)
            listed = [
                c for c in await state.clients.list() if scope is None or c["id"].startswith(scope)
            ]
        except GatewayError as exc:
            if exc.http_status >= 500:
                raise
            error, status_code = _error_view(exc, locale), exc.http_status
        context = {
            "clients": listed,
            "scope": scope,
            "error": error,
            "notice": _notice(notice, locale),
            "changed": changed,
            "suspended": sum(1 for c in listed if c["status"] == "suspended"),
        }
        return console_page(
            request,
            session,
            "operator/clients.html",
            context,
            role="operator",
            active="clients",
            status_code=status_code,
        )

    @router.get("/he-thong")
    async def clients(
        request: Request,
        state: State,
        session: BrowserOperator,
        done: Annotated[str | None, Query(alias="xong", max_length=20)] = None,
        changed: Annotated[str | None, Query(alias="he-thong", max_length=200)] = None,
    ) -> Response:
        return await clients_page(request, state, session, notice=done, changed=changed)

    @router.post("/he-thong/trang-thai")
    async def set_status(
        request: Request,
        state: State,
        session: BrowserOperator,
        client_id: Annotated[str, Form(max_length=200)],
        status: Annotated[str, Form(max_length=20)],
    ) -> Response:
        await check_csrf(request, session)
        identity = session.identity
        try:
            if status not in {"active", "suspended"}:
                raise InvalidArgument("A status is active or suspended.", argument="status")
            may_act_on(state, identity, client_id)
            client = await state.clients.set_status(
                client_id, status, record=client_change_recorder(request, state, identity)
            )
        except GatewayError as exc:
            if exc.http_status >= 500:
                raise
            return await clients_page(
                request,
                state,
                session,
                error=_error_view(exc, locale_of(request)),
                status_code=exc.http_status,
            )
        return _back("/van-hanh/he-thong", xong=client.status, **{"he-thong": client.id})

    async def approvals_page(
        request: Request,
        state: GatewayState,
        session: BrowserSession,
        *,
        error: dict[str, Any] | None = None,
        notice: str | None = None,
        changed: str | None = None,
        status_code: int = 200,
    ) -> Response:
        locale = locale_of(request)
        waiting: list[dict[str, Any]] = []
        try:
            waiting = [_version_shown(v) for v in await pending_versions(state, session.identity)]
        except GatewayError as exc:
            if exc.http_status >= 500:
                raise
            error, status_code = _error_view(exc, locale), exc.http_status
        platform = state.settings.platform_organisation
        context = {
            "waiting": waiting,
            "error": error,
            "notice": _notice(notice, locale),
            "changed": changed,
            "platform": platform is not None and session.identity.org == platform,
            "outcomes": _OUTCOMES,
            "me": session.identity.subject,
        }
        return console_page(
            request,
            session,
            "operator/approvals.html",
            context,
            role="operator",
            active="approvals",
            status_code=status_code,
        )

    @router.get("/phe-duyet")
    async def approvals(
        request: Request,
        state: State,
        session: BrowserOperator,
        done: Annotated[str | None, Query(alias="xong", max_length=20)] = None,
        changed: Annotated[str | None, Query(alias="ket-noi", max_length=60)] = None,
    ) -> Response:
        return await approvals_page(request, state, session, notice=done, changed=changed)

    @router.post("/phe-duyet/{name}/{version}/{action}")
    async def act(
        request: Request,
        state: State,
        session: BrowserOperator,
        name: Annotated[str, Path(pattern=_NAME, max_length=40)],
        version: Annotated[int, Path(ge=1, le=1_000_000)],
        action: str,
        key: Annotated[str, Form(max_length=128)] = "",
    ) -> Response:
        await check_csrf(request, session)
        identity = session.identity
        done = {"duyet": "approved", "tu-choi": "rejected", "chay-thu": "dry_run"}.get(action)
        try:
            if done is None:
                raise InvalidArgument("No such action.", argument="action")
            if action == "duyet":
                await approve_version(request, state, identity, name, version)
            elif action == "tu-choi":
                await reject_version(request, state, identity, name, version)
            else:
                if _SAMPLE_KEY.fullmatch(key.strip()) is None:
                    raise InvalidArgument(
                        "A sample key is 1-128 letters, digits or . _ / -.", argument="key"
                    )
                await dry_run_version(request, state, identity, name, version, key=key.strip())
        except GatewayError as exc:
            if exc.http_status >= 500:
                raise
            return await approvals_page(
                request,
                state,
                session,
                error=_error_view(exc, locale_of(request)),
                changed=f"{name}/{version}",
                status_code=exc.http_status,
            )
        return _back("/van-hanh/phe-duyet", xong=done, **{"ket-noi": f"{name}/{version}"})

    return router
