"""Reference business-registry service (đăng ký doanh nghiệp): enterprises by tax code,
and the registration certificates it issued, signed with its own key.

Certificates: ``GET /v1/giay-chung-nhan/{so_giay}`` (one), ``POST
/v1/giay-chung-nhan/tra-cuu`` with ``{"danh_sach": [...]}`` (a batch) and ``GET
/v1/chu-the/{id}/giay-chung-nhan`` → ``{"ket_qua": [...]}`` (every certificate of a
holder: an enterprise code or an owner's personal id). Each carries ``sha256``, the
hash of its file as held now, and ``chu_ky``, the JWS made at issuance; the key is
published at ``GET /.well-known/jwks.json``.
"""

import asyncio
from typing import Final

import orjson
from fastapi import APIRouter, FastAPI, Request, Response

from sandbox._app import build_app
from sandbox._businesses import BUSINESS_FIELDS, build_documents
from sandbox._data import Dataset, generate
from sandbox._documents import DocumentStore, document_router
from sandbox._identifiers import is_personal_id, is_tax_code
from sandbox._lookup import Collection
from sandbox._responses import (
    BAD_ID,
    BAD_REQUEST,
    NOT_FOUND,
    TOO_MANY,
    error_response,
    json_response,
)
from sandbox._signing import registry_key
from sandbox._stats import Stats
from sandbox.config import SandboxSettings

CERTIFICATES: Final = "/v1/giay-chung-nhan"
HOLDER_CERTIFICATES: Final = "/v1/chu-the/{chu_the}/giay-chung-nhan"


def create_app(
    settings: SandboxSettings,
    dataset: Dataset | None = None,
    documents: DocumentStore | None = None,
) -> FastAPI:
    """The business app; the dataset and certificates are built from ``settings`` when not
    given (the signing key from ``settings.business_key_file``, or one per process)."""
    data = dataset if dataset is not None else generate(settings)
    store = (
        documents
        if documents is not None
        else build_documents(
            settings.seed,
            data.businesses,
            data.citizens,
            registry_key(settings.business_key_file),
        )
    )
    businesses = Collection(
        name="doanh_nghiep",
        path="/v1/doanh-nghiep",
        key_field="ma_so_doanh_nghiep",
        fields=BUSINESS_FIELDS,
        records=data.businesses,
        is_valid_key=is_tax_code,
        what="mã số doanh nghiệp (10 chữ số hợp lệ, hoặc dạng chi nhánh -001 đến -999)",
    )
    app = build_app(
        title="Sandbox: Cơ sở dữ liệu quốc gia về đăng ký doanh nghiệp",
        settings=settings,
        collections=(businesses,),
        records=len(data.businesses),
        sample=data.sample,
    )
    app.state.documents = store
    stats: Stats = app.state.stats
    app.include_router(_certificate_router(store, settings, stats))
    app.include_router(document_router(store, on_call=stats.call))
    return app


def _certificate_router(store: DocumentStore, settings: SandboxSettings, stats: Stats) -> APIRouter:
    router = APIRouter()
    delay = settings.latency_ms / 1000

    @router.get(f"{CERTIFICATES}/{{so_giay}}", name="giay_chung_nhan.get")
    async def get_one(so_giay: str) -> Response:
        stats.call("giay_chung_nhan.get")
        stats.ids(1)
        if delay:
            await asyncio.sleep(delay)
        record = store.get(so_giay)
        if record is None:
            return error_response(404, NOT_FOUND, "Không tìm thấy giấy chứng nhận.")
        return json_response(record)

    @router.post(f"{CERTIFICATES}/tra-cuu", name="giay_chung_nhan.batch")
    async def batch(request: Request) -> Response:
        stats.call("giay_chung_nhan.batch")
        try:
            payload = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return error_response(400, BAD_REQUEST, "Thân yêu cầu không phải JSON.")
        numbers = payload.get("danh_sach") if isinstance(payload, dict) else None
        if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
            return error_response(400, BAD_REQUEST, "danh_sach phải là một mảng chuỗi.")
        stats.ids(len(numbers))
        if len(numbers) > settings.max_batch:
            return error_response(
                400,
                TOO_MANY,
                f"Tối đa {settings.max_batch} số trong một lần tra cứu.",
                toi_da=settings.max_batch,
            )
        if delay:
            await asyncio.sleep(delay)
        wanted = list(dict.fromkeys(numbers))
        return json_response(
            {
                "ket_qua": [r for r in store.many(wanted) if r is not None],
                "khong_tim_thay": [n for n in wanted if n not in store],
            }
        )

    @router.get(HOLDER_CERTIFICATES, name="giay_chung_nhan.holder")
    async def of_holder(chu_the: str) -> Response:
        stats.call("giay_chung_nhan.holder")
        stats.ids(1)
        if delay:
            await asyncio.sleep(delay)
        if not (is_tax_code(chu_the) or is_personal_id(chu_the)):
            return error_response(
                400, BAD_ID, "Không phải mã số doanh nghiệp hay số định danh cá nhân."
            )
        return json_response({"ket_qua": store.of_holder(chu_the)})

    return router
