"""The two lookup routes every sandbox collection offers: one id, or a batch of ids.

``GET {path}/{id}?truong=a,b`` and ``POST {path}/tra-cuu`` with
``{"danh_sach": [...], "truong": [...] | null}``. Full records are encoded once, when
the router is built; a ``truong`` projection is encoded per request.
"""

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request, Response

from sandbox._addresses import JSONObject
from sandbox._responses import (
    BAD_FIELD,
    BAD_ID,
    BAD_REQUEST,
    NOT_FOUND,
    TOO_MANY,
    error_response,
    json_response,
    raw_json,
)
from sandbox._stats import Stats
from sandbox.config import SandboxSettings


@dataclass(frozen=True, slots=True)
class Collection:
    """One kind of record served by id."""

    name: str
    """Route-name prefix, e.g. ``cong_dan`` (routes ``cong_dan.get``, ``cong_dan.batch``)."""
    path: str
    key_field: str
    fields: tuple[str, ...]
    records: Mapping[str, JSONObject]
    is_valid_key: Callable[[str], bool]
    what: str
    """What the ids name, for messages, e.g. "số định danh cá nhân (12 chữ số)"."""

    @property
    def get_route(self) -> str:
        """Name of the single-id route, as counted in stats."""
        return f"{self.name}.get"

    @property
    def batch_route(self) -> str:
        """Name of the batch route, as counted in stats."""
        return f"{self.name}.batch"


class _RejectedError(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def lookup_router(collection: Collection, settings: SandboxSettings, stats: Stats) -> APIRouter:
    """Routes for ``collection``; every call is counted in ``stats``."""
    router = APIRouter()
    encoded = {key: orjson.dumps(record) for key, record in collection.records.items()}
    allowed = frozenset(collection.fields)
    key_field = collection.key_field
    delay = settings.latency_ms / 1000

    def check_fields(fields: Sequence[str]) -> None:
        unknown = [f for f in fields if f not in allowed]
        if unknown:
            raise _RejectedError(
                error_response(
                    400, BAD_FIELD, "Trường không có trong nguồn dữ liệu.", truong=unknown
                )
            )
        stats.fields(fields)

    def project(key: str, fields: Sequence[str]) -> JSONObject:
        record = collection.records[key]
        return {key_field: key} | {f: record[f] for f in fields if f != key_field}

    @router.get(f"{collection.path}/{{{key_field}}}", name=collection.get_route)
    async def get_one(
        key: Annotated[str, Path(alias=key_field)], truong: str | None = None
    ) -> Response:
        stats.call(collection.get_route)
        stats.ids(1)
        if delay:
            await asyncio.sleep(delay)
        if not collection.is_valid_key(key):
            return error_response(400, BAD_ID, f"Không phải {collection.what}.")
        fields = None if truong is None else _unique(s.strip() for s in truong.split(","))
        if fields is not None:
            try:
                check_fields(fields)
            except _RejectedError as invalid:
                return invalid.response
        if key not in encoded:
            return error_response(404, NOT_FOUND, "Không tìm thấy bản ghi.")
        if fields is None:
            return raw_json(encoded[key])
        return json_response(project(key, fields))

    @router.post(f"{collection.path}/tra-cuu", name=collection.batch_route)
    async def batch(request: Request) -> Response:
        stats.call(collection.batch_route)
        try:
            keys, fields = _parse_batch(await request.body())
        except _RejectedError as invalid:
            return invalid.response
        stats.ids(len(keys))
        if delay:
            await asyncio.sleep(delay)
        if len(keys) > settings.max_batch:
            return error_response(
                400,
                TOO_MANY,
                f"Tối đa {settings.max_batch} mã trong một lần tra cứu.",
                toi_da=settings.max_batch,
            )
        bad = [i for i, key in enumerate(keys) if not collection.is_valid_key(key)]
        if bad:
            return error_response(
                400, BAD_ID, f"danh_sach có phần tử không phải {collection.what}.", vi_tri=bad
            )
        if fields is not None:
            try:
                check_fields(fields)
            except _RejectedError as invalid:
                return invalid.response
        wanted = _unique(keys)
        found = [key for key in wanted if key in encoded]
        missing = [key for key in wanted if key not in encoded]
        if fields is None:
            return raw_json(
                b'{"ket_qua":['
                + b",".join(encoded[key] for key in found)
                + b'],"khong_tim_thay":'
                + orjson.dumps(missing)
                + b"}"
            )
        return json_response(
            {"ket_qua": [project(key, fields) for key in found], "khong_tim_thay": missing}
        )

    return router


def _unique(items: Any) -> list[str]:
    """Items in first-seen order, duplicates and empty strings dropped."""
    return [item for item in dict.fromkeys(items) if item]


def _parse_batch(body: bytes) -> tuple[list[str], list[str] | None]:
    def invalid(message: str) -> _RejectedError:
        return _RejectedError(error_response(400, BAD_REQUEST, message))

    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise invalid("Thân yêu cầu không phải JSON.") from None
    if not isinstance(payload, dict):
        raise invalid('Thân yêu cầu phải là {"danh_sach": [...], "truong": [...] | null}.')
    keys = payload.get("danh_sach")
    fields = payload.get("truong")
    if not isinstance(keys, list):
        raise invalid("danh_sach phải là một mảng.")
    if fields is not None and (
        not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)
    ):
        raise invalid("truong phải là null hoặc một mảng chuỗi.")
    # A non-string id is reported by position like any other malformed id.
    keys = [key if isinstance(key, str) else "" for key in keys]
    return keys, None if fields is None else _unique(fields)
