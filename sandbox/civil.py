"""Reference civil-status registry (hộ tịch), a GraphQL service of signed documents.

``POST /graphql`` answers ``giayTo(soGiayTo:)`` (one document, null when unknown),
``danhSachGiayTo(danhSach:)`` (a batch, null for each unknown number) and
``giayToTheoNguoi(soDinhDanh:)`` (every document naming a citizen as a holder: birth,
marriage and death certificates; none for an enterprise code). An id that is neither a
personal id (12 digits) nor an enterprise code, or a batch over ``max_batch``, is a
GraphQL error with ``extensions.code`` ``BAD_USER_INPUT``.
Each document carries ``sha256``, the hash of its file as held now, and ``chuKy``, the
compact JWS the registry made at issuance over the fields it names (``_civil``);
the registry's key is published at ``GET /.well-known/jwks.json``.
"""

import asyncio
from typing import Any, Final

import orjson
import strawberry
from fastapi import FastAPI, Request, Response
from graphql import GraphQLError
from strawberry.types import ExecutionContext, Info

from sandbox import _civil
from sandbox._addresses import JSONObject
from sandbox._admin import admin_router
from sandbox._data import Dataset, generate
from sandbox._documents import DocumentStore, document_router
from sandbox._identifiers import is_personal_id, is_tax_code
from sandbox._responses import BAD_REQUEST, error_response, json_response
from sandbox._signing import registry_key
from sandbox._stats import Stats
from sandbox.config import SandboxSettings

__all__ = ["GRAPHQL_PATH", "SCHEMA", "create_app"]

GRAPHQL_PATH: Final = "/graphql"
BAD_USER_INPUT: Final = "BAD_USER_INPUT"
_ROUTES: Final = ("giayTo", "danhSachGiayTo", "giayToTheoNguoi", "jwks")


@strawberry.type(description="Một giấy tờ hộ tịch đã cấp, với chữ ký số của cơ quan đăng ký.")
class GiayTo:
    so_giay_to: str
    loai: str = strawberry.field(description="KHAI_SINH | KET_HON | KHAI_TU")
    ten_giay_to: str
    co_quan_cap: str
    ngay_cap: str = strawberry.field(description="YYYY-MM-DD")
    hieu_luc_den: str | None
    ma_thu_tuc: str | None
    nguoi_duoc_cap: list[str]
    sha256: str = strawberry.field(description="SHA-256 (hex) của tệp giấy tờ hiện lưu.")
    chu_ky: str = strawberry.field(description="JWS (compact) ký khi cấp.")

    @classmethod
    def of(cls, record: JSONObject) -> "GiayTo":
        return cls(
            so_giay_to=record["soGiayTo"],
            loai=record["loai"],
            ten_giay_to=record["tenGiayTo"],
            co_quan_cap=record["coQuanCap"],
            ngay_cap=record["ngayCap"],
            hieu_luc_den=record["hieuLucDen"],
            ma_thu_tuc=record["maThuTuc"],
            nguoi_duoc_cap=list(record["nguoiDuocCap"]),
            sha256=record["sha256"],
            chu_ky=record["chuKy"],
        )


def _context(info: Info[Any, None]) -> tuple[DocumentStore, Stats, SandboxSettings]:
    context = info.context
    return context["documents"], context["stats"], context["settings"]


def _bad_input(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": BAD_USER_INPUT})


@strawberry.type
class Query:
    @strawberry.field
    async def giay_to(self, info: Info[Any, None], so_giay_to: str) -> GiayTo | None:
        """One document by number; null when unknown."""
        documents, stats, _ = _context(info)
        stats.call("giayTo")
        stats.ids(1)
        record = documents.get(so_giay_to)
        return None if record is None else GiayTo.of(record)

    @strawberry.field
    async def danh_sach_giay_to(
        self, info: Info[Any, None], danh_sach: list[str]
    ) -> list[GiayTo | None]:
        """Documents by number, in order; null for each unknown number."""
        documents, stats, settings = _context(info)
        stats.call("danhSachGiayTo")
        stats.ids(len(danh_sach))
        if len(danh_sach) > settings.max_batch:
            raise _bad_input(f"Tối đa {settings.max_batch} số trong một lần tra cứu.")
        return [None if r is None else GiayTo.of(r) for r in documents.many(danh_sach)]

    @strawberry.field
    async def giay_to_theo_nguoi(self, info: Info[Any, None], so_dinh_danh: str) -> list[GiayTo]:
        """Every document naming the citizen as a holder."""
        documents, stats, _ = _context(info)
        stats.call("giayToTheoNguoi")
        stats.ids(1)
        if is_tax_code(so_dinh_danh):
            # An enterprise is a holder too, of other registries' documents; it holds none
            # here. A caller asking every registry about one gets an empty list, not an error.
            return []
        if not is_personal_id(so_dinh_danh):
            raise _bad_input("Không phải số định danh cá nhân (12 chữ số).")
        return [GiayTo.of(r) for r in documents.of_holder(so_dinh_danh)]


class _Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # A caller's bad input is its answer, not the registry's fault: not logged.
        unexpected = [e for e in errors if (e.extensions or {}).get("code") != BAD_USER_INPUT]
        if unexpected:
            super().process_errors(unexpected, execution_context)


SCHEMA: Final = _Schema(query=Query)
"""The registry's GraphQL schema (upstream names: Vietnamese without diacritics)."""


def create_app(
    settings: SandboxSettings,
    dataset: Dataset | None = None,
    documents: DocumentStore | None = None,
) -> FastAPI:
    """The civil registry app; dataset and documents are built from ``settings`` when not
    given (its key from ``settings.civil_key_file``, or one per process)."""
    data = dataset if dataset is not None else generate(settings)
    store = (
        documents
        if documents is not None
        else _civil.build(settings, data, registry_key(settings.civil_key_file))
    )
    stats = Stats(_ROUTES)
    app = FastAPI(title="Sandbox: Cơ sở dữ liệu hộ tịch điện tử (GraphQL)", version="1")
    app.state.stats = stats
    app.state.settings = settings
    app.state.documents = store
    context = {"documents": store, "stats": stats, "settings": settings}
    delay = settings.latency_ms / 1000

    @app.post(GRAPHQL_PATH, name="graphql")
    async def graphql(request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return error_response(400, BAD_REQUEST, "Thân yêu cầu không phải JSON.")
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return error_response(400, BAD_REQUEST, 'Thân yêu cầu là {"query", "variables"}.')
        variables = body.get("variables")
        if delay:
            await asyncio.sleep(delay)
        result = await SCHEMA.execute(
            body["query"],
            variable_values=variables if isinstance(variables, dict) else None,
            operation_name=body.get("operationName"),
            context_value=context,
        )
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [error.formatted for error in result.errors]
        return json_response(answer)

    app.include_router(document_router(store, on_call=stats.call))
    app.include_router(admin_router(records=len(store), stats=stats, sample=data.sample))
    return app
