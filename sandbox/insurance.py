"""Reference social and health insurance agency (cơ sở dữ liệu bảo hiểm), X-Road style.

Served as an X-Road REST service of the member `VN/GOV/BHXH`, subsystem `CSDLBH`, at
its security server's paths: ``GET /r1/VN/GOV/BHXH/CSDLBH/so-bhxh/v1/cong-dan/{id}``
and ``POST .../cong-dan/tra-cuu``, like the other sandboxes' lookups. A call under
``/r1/`` without an ``X-Road-Client`` (or ``X-Road-Id``) header is refused with an
X-Road error (``X-Road-Error: Client.InvalidRequest``); every answer under ``/r1/``
carries ``X-Road-Request-Hash``, the base64 SHA-512 of the request (method, path and
query, ``X-Road-Client``, ``X-Road-Id``, body) as the security server logged it.
"""

import base64
import hashlib
from typing import Final

import orjson
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox import _insurance
from sandbox._app import build_app
from sandbox._data import Dataset, generate
from sandbox._identifiers import is_personal_id
from sandbox._lookup import Collection
from sandbox.config import SandboxSettings

__all__ = ["SERVICE_PATH", "XROAD_PREFIX", "create_app", "request_hash"]

XROAD_PREFIX: Final = "/r1/"
SERVICE_PATH: Final = "/r1/VN/GOV/BHXH/CSDLBH/so-bhxh/v1"
"""The service's path: `/r1/{instance}/{class}/{member}/{subsystem}/{service}/{version}`."""


def create_app(settings: SandboxSettings, dataset: Dataset | None = None) -> FastAPI:
    """The insurance app; the dataset is generated from ``settings`` when not given."""
    data = dataset if dataset is not None else generate(settings)
    insurance = _insurance.build(settings, data)
    records = Collection(
        name="bhxh",
        path=f"{SERVICE_PATH}/cong-dan",
        key_field="so_dinh_danh",
        fields=_insurance.INSURANCE_FIELDS,
        records=insurance.records,
        is_valid_key=is_personal_id,
        what="số định danh cá nhân (12 chữ số)",
    )
    app = build_app(
        title="Sandbox: Cơ sở dữ liệu bảo hiểm xã hội, bảo hiểm y tế (X-Road)",
        settings=settings,
        collections=(records,),
        records=len(insurance.records),
        sample=data.sample,
    )
    app.state.insurance = insurance
    app.add_middleware(_SecurityServer)
    return app


def request_hash(method: str, target: bytes, client: bytes, request_id: bytes, body: bytes) -> str:
    """Base64 SHA-512 of a request as the security server logs it."""
    digest = hashlib.sha512()
    for part in (method.encode(), target, client, request_id):
        digest.update(part + b"\n")
    digest.update(body)
    return base64.b64encode(digest.digest()).decode()


class _SecurityServer:
    """What an X-Road security server adds in front of the service."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(XROAD_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        client, request_id = headers.get(b"x-road-client"), headers.get(b"x-road-id")
        if not client or not request_id:
            await _fault(send, "Client.InvalidRequest", "X-Road-Client and X-Road-Id are required")
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        digest = request_hash(scope["method"], target, client, request_id, body).encode()
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-road-request-hash", digest),
                    (b"x-road-id", request_id),
                ]
            await send(message)

        await self.app(scope, replay, answer)


async def _fault(send: Send, kind: str, message: str) -> None:
    body = orjson.dumps({"type": kind, "message": message, "detail": ""})
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-road-error", kind.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
