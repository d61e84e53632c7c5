"""Reference dossier registry: the procedure-handling system's dossiers (hồ sơ), REST.

``GET /v1/ho-so/{ma_ho_so}`` answers one dossier: its code, procedure (``ma_thu_tuc``),
receiving organisation, the organisations handling it, status (``trang_thai``: one of
``sandbox._dossiers.STATUSES``), received and due dates, and the persons it concerns
(``nguoi_lien_quan``: identifier and role). Any code it does not hold, of whatever
form (a case number of a system that does not use dossier codes), is 404
``KHONG_TIM_THAY``.

As a one-stop desk would, the sandbox also receives dossiers and changes their status
(``POST /_sandbox/ho-so``, ``POST /_sandbox/ho-so/{ma_ho_so}/trang-thai``), for the demo
and the tests; ``GET /_sandbox/sample`` lists every dossier.
"""

import asyncio
import datetime
from typing import Any, Final

import orjson
from fastapi import FastAPI, Request, Response

from sandbox import _dossiers
from sandbox._data import Dataset, generate
from sandbox._responses import BAD_REQUEST, NOT_FOUND, error_response, json_response
from sandbox._stats import Stats
from sandbox.config import SandboxSettings

__all__ = ["create_app"]

_ROUTES: Final = ("ho_so.get",)


def create_app(
    settings: SandboxSettings,
    dataset: Dataset | None = None,
    book: _dossiers.DossierBook | None = None,
) -> FastAPI:
    """The dossier registry app, over the dossiers of the population of ``settings``."""
    data = dataset if dataset is not None else generate(settings)
    dossiers = book if book is not None else _dossiers.build(data, settings.seed)
    stats = Stats(_ROUTES)
    app = FastAPI(title="Sandbox: Hệ thống thông tin giải quyết thủ tục hành chính", version="1")
    app.state.stats = stats
    app.state.settings = settings
    app.state.dossiers = dossiers
    delay = settings.latency_ms / 1000

    @app.get("/v1/ho-so/{code:path}", name="ho_so.get")
    async def get_dossier(code: str) -> Response:
        stats.call("ho_so.get")
        stats.ids(1)
        if delay:
            await asyncio.sleep(delay)
        record = dossiers.get(code)
        if record is None:
            return error_response(404, NOT_FOUND, "Không có hồ sơ này.")
        return json_response(record)

    @app.post("/_sandbox/ho-so", name="sandbox.receive")
    async def receive(request: Request) -> Response:
        body = await _body(request)
        if isinstance(body, Response):
            return body
        persons = body.get("nguoi_lien_quan")
        try:
            received = body.get("ngay_tiep_nhan")
            record = dossiers.receive(
                procedure=str(body.get("ma_thu_tuc")),
                organisation=str(body.get("co_quan_tiep_nhan")),
                persons=[(p.get("ma_dinh_danh"), p.get("vai_tro")) for p in persons]
                if isinstance(persons, list) and all(isinstance(p, dict) for p in persons)
                else [],
                # A desk receives a dossier today, unless told otherwise.
                received_on=datetime.date.today()
                if received is None
                else datetime.date.fromisoformat(str(received)),
                status=str(body.get("trang_thai", "DA_TIEP_NHAN")),
                handlers=body.get("co_quan_xu_ly"),
            )
        except ValueError as exc:  # DossierError, or a date that is not one
            return error_response(400, BAD_REQUEST, str(exc))
        return json_response(record, 201)

    @app.post("/_sandbox/ho-so/{code}/trang-thai", name="sandbox.status")
    async def set_status(code: str, request: Request) -> Response:
        body = await _body(request)
        if isinstance(body, Response):
            return body
        try:
            record = dossiers.set_status(code, str(body.get("trang_thai")))
        except _dossiers.DossierError as exc:
            return error_response(400, BAD_REQUEST, str(exc))
        if record is None:
            return error_response(404, NOT_FOUND, "Không có hồ sơ này.")
        return json_response(record)

    @app.get("/healthz", name="healthz")
    async def healthz() -> Response:
        return json_response({"status": "ok", "records": len(dossiers)})

    @app.get("/_sandbox/stats", name="sandbox.stats")
    async def get_stats() -> Response:
        return json_response(stats.snapshot())

    @app.get("/_sandbox/sample", name="sandbox.sample")
    async def sample() -> Response:
        return json_response({"ho_so": dossiers.sample()})

    return app


async def _body(request: Request) -> dict[str, Any] | Response:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return error_response(400, BAD_REQUEST, "Thân yêu cầu không phải JSON.")
    if not isinstance(body, dict):
        return error_response(400, BAD_REQUEST, "Thân yêu cầu là một đối tượng JSON.")
    return body
