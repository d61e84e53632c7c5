"""The agency admin's console: the agency's own connectors, submitting a version, its
dry run, a rollback and disabling.

```
GET  /co-quan                          the organisation's connectors and its authority
GET  /co-quan/ket-noi/{name}           one connector: versions, last dry run, calls
POST /co-quan/ket-noi/{name}/chay-thu  run a version's dry run with a sample key
POST /co-quan/ket-noi/{name}/quay-lai  submit an earlier version's manifest again
GET  /co-quan/ket-noi/{name}/tat       confirm disabling the connector
POST /co-quan/ket-noi/{name}/tat       disable it
GET  /co-quan/gui                      the form to submit a manifest file
POST /co-quan/gui                      submit it (YAML or JSON, at most 256 KiB)
```

Every action is the connector routes' own function (`_connector_routes`), so the pages
and the JSON API allow, refuse and record the same things; a refusal is shown in the
page with its stable code (and the manifest's field), never a trace. The dry run's
sample key is never shown back: the page after a run shows only its report.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any, Final

import orjson
import yaml
from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response

from gateway.errors import (
    GatewayError,
    InvalidArgument,
    InvalidManifest,
    NotFound,
    PayloadTooLarge,
)
from gateway.instants import vietnam_time
from gateway.state import GatewayState, State
from gateway.storage import list_connector_versions
from gateway.web._connector_dry_run import summary
from gateway.web._connector_routes import (
    authority_view,
    connector_detail,
    connector_listing,
    disable_in_use,
    dry_run_version,
    rollback_version,
    submit_version,
)
from gateway.web._consoles import console_page
from gateway.web._labels import N_
from gateway.web._sessions import BrowserAgencyAdmin, BrowserSession, CsrfFailed, check_csrf

__all__ = ["MAX_MANIFEST_BYTES", "agency_console_router", "read_manifest", "when"]

MAX_MANIFEST_BYTES: Final = 256 * 1024
"""The largest manifest file the page accepts."""

_TOO_LARGE: Final = "The manifest file is larger than 256 KiB."
_MAX_BODY: Final = 1024 * 1024
"""A form declaring a larger body is refused before it is read."""

_MAX_NODES: Final = 100_000
"""The most values a manifest may hold once its YAML aliases are expanded."""


_NAME: Final = re.compile(r"[a-z0-9][a-z0-9-]{1,39}")
_KEY: Final = re.compile(r"[A-Za-z0-9_./-]{1,128}")
_ENTITY: Final = re.compile(r"[A-Z][A-Za-z0-9]{0,63}")

STATUSES: Final[Mapping[str, str]] = {
    "active": N_("active"),
    "pending": N_("waiting for approval"),
    "disabled": N_("disabled"),
    "removed": N_("removed"),
    "approved": N_("approved, in use"),
    "superseded": N_("replaced by a later version"),
    "rejected": N_("rejected"),
}
"""Connectors' and versions' statuses, as the pages name them."""

BREAKERS: Final[Mapping[str, str]] = {
    "closed": N_("closed (calls go through)"),
    "half_open": N_("half open (trying the source again)"),
    "open": N_("open (calls are stopped)"),
}

OUTCOMES: Final[Mapping[str, tuple[str, str]]] = {
    # outcome: (name, what it means)
    "ok": (N_("mapped"), N_("The source gave a value and it was mapped.")),
    "missing": (N_("no value"), N_("The source answered without a value for this field.")),
    "unmapped": (
        N_("not in the source"),
        N_("What the mapping reads (a column or a key) is not in the source."),
    ),
    "type_mismatch": (
        N_("wrong type"),
        N_("The source's value cannot be mapped to this field's type."),
    ),
    "not_checked": (
        N_("not checked"),
        N_("The record was not found or the call failed, so the field was not checked."),
    ),
    "error": (N_("error"), N_("Mapping this field failed.")),
}
"""Each outcome of a field in a dry run's report."""

_PROBLEMS: Final[Mapping[str, str]] = {
    "INVALID_MANIFEST": N_(
        "The manifest cannot be registered as it is. Correct the field named below and "
        "send the file again."
    ),
    "INVALID_ARGUMENT": N_("What was entered cannot be used. Correct the field named below."),
    "FORBIDDEN": N_(
        "Your organisation may not do this. If it should, ask the platform operator to "
        "widen its authority."
    ),
    "NOT_FOUND": N_("There is no such connector or version."),
    "CONFLICT": N_("This cannot be done in the connector's present state."),
    "AUDIT_UNAVAILABLE": N_(
        "The change could not be recorded, so it was not made. Try again in a moment."
    ),
    "PAYLOAD_TOO_LARGE": N_("The file is larger than 256 KiB."),
}

_NOT_OURS: Final = N_(
    "This connector belongs to another organisation: only that organisation's "
    "administrators and the platform's operators may see or change it."
)


def _problem(exc: GatewayError) -> dict[str, Any]:
    """What a page shows of a refusal: its code, the field it names, its technical text."""
    field = exc.detail.get("field")
    return {
        "code": exc.code,
        "field": str(field) if field is not None else None,
        "explain": _PROBLEMS.get(exc.code, N_("The request was refused.")),
        "detail": exc.message,
    }


def when(instant: str | None) -> str:
    """An instant as the pages show it: `13:05, 06/12/2026` in Vietnam's time."""
    if not instant:
        return "-"
    try:
        moment = datetime.datetime.fromisoformat(instant)
    except ValueError:
        return instant
    return vietnam_time(moment)


# -- manifest files ---------------------------------------------------------------------


def _count_within(data: Any, budget: int) -> bool:
    """Whether `data` holds at most `budget` values (YAML aliases counted each time)."""
    stack, seen = [data], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > budget:
            return False
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def read_manifest(content: bytes) -> dict[str, Any]:
    """A manifest file's bytes (YAML or JSON, UTF-8) as the JSON data the API takes.

    Raises `InvalidManifest` naming where the file is wrong: its encoding, a YAML syntax
    error (line and column), or data that is not a mapping.
    """
    if len(content) > MAX_MANIFEST_BYTES:
        raise PayloadTooLarge(_TOO_LARGE, field="file")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidManifest("The file is not UTF-8 text.", field="file") from None
    if not text.strip():
        raise InvalidManifest("The file is empty.", field="file")
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise InvalidManifest("The manifest is nested too deeply.", field="file") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "file"
        problem = error.problem or error.context or "not valid YAML"
        raise InvalidManifest(f"YAML syntax: {where}: {problem}", field=where) from None
    except yaml.YAMLError:
        raise InvalidManifest("The file is not valid YAML or JSON.", field="file") from None
    if not isinstance(data, dict):
        raise InvalidManifest("A manifest is a mapping of keys (name, kind, ...).", field="(top)")
    if not _count_within(data, _MAX_NODES):
        raise InvalidManifest("The manifest holds too many values.", field="(top)")
    # Through JSON, as the command line sends it: what YAML reads that JSON lacks (dates)
    # travels as text.
    try:
        loaded: dict[str, Any] = orjson.loads(orjson.dumps(data, default=str))
    except (TypeError, orjson.JSONEncodeError) as error:
        # A key that is not text (`200: ok`, `true:`), an integer beyond 64 bits, or
        # nesting JSON does not take: the manifest cannot travel as the API's JSON.
        raise InvalidManifest(
            f"The manifest cannot be read as JSON: {error}. Keys are text (quote them: "
            '"200": ok); numbers fit in 64 bits.',
            field="file",
        ) from None
    return {str(k): v for k, v in loaded.items() if not str(k).startswith("x-")}


# -- what the pages show ----------------------------------------------------------------


def _dry_run_summary(report: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A report in a line: when, which version, counts of outcomes, an error's code."""
    if not report:
        return None
    counts = summary(report)
    errors = [e["error"]["code"] for e in report.get("entities", {}).values() if e.get("error")]
    if report.get("error"):
        errors.insert(0, report["error"].get("code", "ERROR"))
    found = [e.get("found") for e in report.get("entities", {}).values()]
    return {
        "ranAt": report.get("ranAt"),
        "version": report.get("version"),
        "counts": counts,
        "errors": errors,
        "found": all(f is True for f in found) and bool(found),
        "good": not errors
        and bool(found)
        and all(f is True for f in found)
        and set(counts) <= {"ok", "missing"},
    }


def _report_view(report: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A dry run's report, per entity kind, ready for the page (no value: there is none)."""
    if not report:
        return None
    entities = []
    for kind, entry in sorted(report.get("entities", {}).items()):
        reasons = entry.get("unmappedReasons") or {}
        entities.append(
            {
                "kind": kind,
                "found": entry.get("found"),
                "latencyMs": entry.get("latencyMs"),
                "error": (entry.get("error") or {}).get("code"),
                "fields": [
                    {
                        "name": field,
                        "path": f"{kind}.{field}",
                        "outcome": outcome,
                        "reason": reasons.get(field),
                    }
                    for field, outcome in entry.get("fields", {}).items()
                ],
            }
        )
    error = report.get("error") or None
    return {
        "ranAt": report.get("ranAt"),
        "version": report.get("version"),
        "error": error,
        "entities": entities,
        "summary": _dry_run_summary(report),
    }


async def _manifest_facts(state: GatewayState, name: str) -> dict[int, dict[str, Any]]:
    """Per version: its manifest's kind, title and entity kinds (read once allowed)."""
    async with state.engine.connect() as conn:
        versions = await list_connector_versions(conn, name)
    facts = {}
    for v in versions:
        manifest = v.manifest or {}
        entities = manifest.get("entities")
        facts[v.version] = {
            "kind": manifest.get("kind"),
            "title": manifest.get("title"),
            "entities": sorted(entities) if isinstance(entities, dict) else [],
        }
    return facts


def _valid_name(name: str) -> None:
    if _NAME.fullmatch(name) is None:
        raise NotFound("No connector has this name.", kind="Connector")


def _int(value: Any, field: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise InvalidArgument("Choose a version.", field=field) from None
    if not 1 <= number <= 1_000_000:
        raise InvalidArgument("Choose a version.", field=field)
    return number


def _notice(request: Request) -> dict[str, Any] | None:
    """The notice a redirect after an action asks the page to show."""
    query = request.query_params
    for key in ("gui", "quay-lai", "chay-thu"):
        value = query.get(key, "")
        if value.isdigit() and len(value) <= 7:
            return {"kind": key, "version": int(value), "to": query.get("tu", "")[:7]}
    if query.get("da-tat") == "1":
        return {"kind": "da-tat", "version": None, "to": ""}
    return None


def agency_console_router() -> APIRouter:
    """The pages under `/co-quan`."""
    router = APIRouter(prefix="/co-quan", include_in_schema=False)

    def page(
        request: Request,
        session: BrowserSession,
        name: str,
        context: Mapping[str, Any],
        *,
        active: str = "connectors",
        status_code: int = 200,
    ) -> Response:
        shared = {
            "statuses": STATUSES,
            "breakers": BREAKERS,
            "outcomes": OUTCOMES,
            "when": when,
        }
        return console_page(
            request,
            session,
            f"agency/{name}",
            {**shared, **context},
            role="agency_admin",
            active=active,
            status_code=status_code,
        )

    def refused(request: Request, session: BrowserSession, exc: GatewayError) -> Response:
        problem = _problem(exc)
        if exc.code == "FORBIDDEN":
            problem["explain"] = _NOT_OURS
        return page(
            request,
            session,
            "refused.html",
            {"problem": problem},
            status_code=exc.http_status,
        )

    @router.get("")
    async def home(request: Request, state: State, session: BrowserAgencyAdmin) -> Response:
        identity = session.identity
        problem, status_code = None, 200
        rows: list[dict[str, Any]] = []
        authority = None
        try:
            for row in await connector_listing(state, identity):
                detail = await connector_detail(state, identity, row["name"])
                rows.append(
                    {
                        **row,
                        "breaker": detail["breaker"],
                        "calls": detail["calls"],
                        "dryRun": _dry_run_summary(detail["lastDryRun"]),
                    }
                )
            if identity.org is not None:
                try:
                    authority = await authority_view(state, identity, identity.org)
                except NotFound:
                    authority = None
        except GatewayError as exc:
            problem, status_code = _problem(exc), exc.http_status
        return page(
            request,
            session,
            "connectors.html",
            {"connectors": rows, "authority": authority, "problem": problem},
            status_code=status_code,
        )

    async def connector_page(
        request: Request,
        state: GatewayState,
        session: BrowserSession,
        name: str,
        *,
        problem: dict[str, Any] | None = None,
        form: Mapping[str, Any] | None = None,
        status_code: int = 200,
    ) -> Response:
        try:
            _valid_name(name)
            detail = await connector_detail(state, session.identity, name)
        except GatewayError as exc:
            return refused(request, session, exc)
        facts = await _manifest_facts(state, name)
        versions = detail["versions"]
        newest = versions[-1]["version"] if versions else None
        wanted = request.query_params.get("chay-thu", "")
        shown = next((v for v in versions if str(v["version"]) == wanted and v["lastDryRun"]), None)
        report = shown["lastDryRun"] if shown else detail["lastDryRun"]
        pending = [v["version"] for v in versions if v["status"] == "pending"]
        if request.headers.get("hx-request") == "true" and not pending:
            # The status block's poll: nothing waits any more, so the whole page (its
            # notice, its dry run's versions) is shown again as it now is.
            return Response(headers={"HX-Redirect": f"/co-quan/ket-noi/{name}"})
        default_version = pending[-1] if pending else newest
        newest_facts = facts.get(newest or 0, {})
        rollbacks = [
            v["version"]
            for v in versions
            if v["status"] in ("approved", "superseded")
            and not (detail["status"] == "active" and v["version"] == detail["activeVersion"])
        ]
        return page(
            request,
            session,
            "connector.html",
            {
                "c": detail,
                "facts": facts,
                "kind": newest_facts.get("kind"),
                "title": newest_facts.get("title"),
                "entities": facts.get(default_version or 0, {}).get("entities", []),
                "versions_newest_first": list(reversed(versions)),
                "pending": pending,
                "report": _report_view(report),
                "rollbacks": list(reversed(rollbacks)),
                "default_version": default_version,
                "unrun": not any(
                    v["version"] == default_version and v["lastDryRun"] for v in versions
                ),
                "notice": _notice(request),
                "problem": problem,
                "form": form or {},
                "poll": bool(pending),
            },
            status_code=status_code,
        )

    @router.get("/ket-noi/{name}")
    async def connector(
        request: Request, state: State, session: BrowserAgencyAdmin, name: str
    ) -> Response:
        return await connector_page(request, state, session, name)

    @router.post("/ket-noi/{name}/chay-thu")
    async def run_dry_run(
        request: Request, state: State, session: BrowserAgencyAdmin, name: str
    ) -> Response:
        await check_csrf(request, session)
        form = await request.form()
        key = str(form.get("key") or "").strip()
        entity = str(form.get("entity") or "").strip() or None
        kept = {"version": str(form.get("version") or ""), "entity": entity or ""}
        try:
            _valid_name(name)
            version = _int(form.get("version"), "version")
            if _KEY.fullmatch(key) is None:
                raise InvalidArgument(
                    "A sample key is 1 to 128 letters, digits or _ . / -", field="key"
                )
            if entity is not None and _ENTITY.fullmatch(entity) is None:
                raise InvalidArgument("No such entity kind.", field="entity")
            await dry_run_version(
                request, state, session.identity, name, version, key=key, entity=entity
            )
        except GatewayError as exc:
            if exc.http_status in (403, 404):
                return refused(request, session, exc)
            return await connector_page(
                request,
                state,
                session,
                name,
                problem={**_problem(exc), "action": "dry-run"},
                form=kept,
                status_code=exc.http_status,
            )
        return RedirectResponse(
            f"/co-quan/ket-noi/{name}?chay-thu={version}#chay-thu", status_code=303
        )

    @router.post("/ket-noi/{name}/quay-lai")
    async def roll_back(
        request: Request, state: State, session: BrowserAgencyAdmin, name: str
    ) -> Response:
        await check_csrf(request, session)
        form = await request.form()
        try:
            _valid_name(name)
            earlier = _int(form.get("version"), "version")
            done = await rollback_version(request, state, session.identity, name, earlier)
        except GatewayError as exc:
            if exc.http_status in (403, 404):
                return refused(request, session, exc)
            return await connector_page(
                request,
                state,
                session,
                name,
                problem={**_problem(exc), "action": "rollback"},
                status_code=exc.http_status,
            )
        return RedirectResponse(
            f"/co-quan/ket-noi/{name}?quay-lai={done['version']}&tu={earlier}", status_code=303
        )

    @router.get("/ket-noi/{name}/tat")
    async def confirm_disable(
        request: Request, state: State, session: BrowserAgencyAdmin, name: str
    ) -> Response:
        try:
            _valid_name(name)
            detail = await connector_detail(state, session.identity, name)
        except GatewayError as exc:
            return refused(request, session, exc)
        return page(request, session, "disable.html", {"c": detail})

    @router.post("/ket-noi/{name}/tat")
    async def disable(
        request: Request, state: State, session: BrowserAgencyAdmin, name: str
    ) -> Response:
        await check_csrf(request, session)
        try:
            _valid_name(name)
            await disable_in_use(request, state, session.identity, name)
        except GatewayError as exc:
            if exc.http_status in (403, 404):
                return refused(request, session, exc)
            return await connector_page(
                request,
                state,
                session,
                name,
                problem={**_problem(exc), "action": "disable"},
                status_code=exc.http_status,
            )
        return RedirectResponse(f"/co-quan/ket-noi/{name}?da-tat=1", status_code=303)

    @router.get("/gui")
    async def submit_form(request: Request, session: BrowserAgencyAdmin) -> Response:
        return page(request, session, "submit.html", {"problem": None}, active="submit")

    @router.post("/gui")
    async def submit(request: Request, state: State, session: BrowserAgencyAdmin) -> Response:
        declared = request.headers.get("content-length", "")
        filename = ""
        try:
            if not declared.isdigit() or int(declared) > _MAX_BODY:
                raise PayloadTooLarge(_TOO_LARGE, field="file")
            async with request.form(max_files=1, max_fields=4) as form:
                await check_csrf(request, session)
                upload = form.get("manifest")
                if not isinstance(upload, UploadFile) or not upload.filename:
                    raise InvalidManifest("Choose a manifest file to send.", field="file")
                filename = upload.filename[:200]
                content = await upload.read(MAX_MANIFEST_BYTES + 1)
            manifest = read_manifest(content)
            done = await submit_version(request, state, session.identity, manifest)
        except GatewayError as exc:
            if isinstance(exc, CsrfFailed):
                raise
            return page(
                request,
                session,
                "submit.html",
                {"problem": _problem(exc), "filename": filename},
                active="submit",
                status_code=exc.http_status,
            )
        return RedirectResponse(
            f"/co-quan/ket-noi/{done['name']}?gui={done['version']}", status_code=303
        )

    return router
