"""Issued documents as a registry holds them: metadata, the file, the JWS made at issuance.

A served record is the stored metadata, the SHA-256 of the file's bytes *now* and the
JWS made when the document was issued; so a file or a title changed afterwards (the
loopback-only tamper route, for tests and demos) no longer matches its signature.
"""

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, ConfigDict

from sandbox._addresses import JSONObject
from sandbox._responses import NOT_FOUND, error_response, json_response
from sandbox._signing import RegistryKey, file_sha256, jwks, sign_document

JWKS_PATH: Final = "/.well-known/jwks.json"
TAMPER_PATH: Final = "/admin/documents/{number}/tamper"

Tampering = Literal["file", "metadata", "signature"]


@dataclass(frozen=True, slots=True)
class DocumentFields:
    """The names a registry serves a document's parts under."""

    number: str
    """The document number, the key (``soGiayTo``, ``so_giay``)."""
    title: str
    holders: str
    """The list of holder ids (personal ids, enterprise codes)."""
    sha256: str
    signature: str
    signed: tuple[str, ...]
    """The fields the JWS covers, ``sha256`` among them."""


class DocumentStore:
    """Documents by number and by holder, signed with the registry's key when issued."""

    def __init__(self, key: RegistryKey, names: DocumentFields) -> None:
        if names.sha256 not in names.signed or names.signature in names.signed:
            raise ValueError("the signature must cover the file's hash and not itself")
        self.key = key
        self.names = names
        self._records: dict[str, JSONObject] = {}
        self._files: dict[str, bytearray] = {}
        self._signatures: dict[str, str] = {}
        self._holders: dict[str, list[str]] = {}

    def issue(self, record: Mapping[str, Any], content: bytes) -> None:
        """Keep ``record`` (its metadata, in served order) with its file, and sign both."""
        names = self.names
        number = record[names.number]
        if number in self._records:
            raise ValueError(f"document {number} issued twice")
        metadata = {k: v for k, v in record.items() if k not in (names.sha256, names.signature)}
        signed = {**metadata, names.sha256: file_sha256(content)}
        missing = [f for f in names.signed if f not in signed]
        if missing:
            raise ValueError(f"document {number} lacks signed fields {missing}")
        self._records[number] = metadata
        self._files[number] = bytearray(content)
        self._signatures[number] = sign_document(self.key, {f: signed[f] for f in names.signed})
        for holder in record[names.holders]:
            self._holders.setdefault(holder, []).append(number)

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, number: object) -> bool:
        return number in self._records

    def numbers(self) -> list[str]:
        """Every document number, in issue order."""
        return list(self._records)

    def get(self, number: str) -> JSONObject | None:
        """The served record: metadata, the hash of the file as held now, the JWS."""
        metadata = self._records.get(number)
        if metadata is None:
            return None
        names = self.names
        return {
            **metadata,
            names.sha256: file_sha256(bytes(self._files[number])),
            names.signature: self._signatures[number],
        }

    def of_holder(self, holder: str) -> list[JSONObject]:
        """Every document naming ``holder``, in issue order."""
        return [self._served(n) for n in self._holders.get(holder, ())]

    def many(self, numbers: Iterable[str]) -> list[JSONObject | None]:
        """:meth:`get` of each number, in order."""
        return [self.get(n) for n in numbers]

    def file(self, number: str) -> bytes:
        """The document's file as held now."""
        return bytes(self._files[number])

    def tamper(self, number: str, what: Tampering) -> None:
        """Change one byte of the file, one character of the title or of the JWS signature."""
        if number not in self._records:
            raise KeyError(number)
        if what == "file":
            self._files[number][-1] ^= 0x01
        elif what == "metadata":
            title = self._records[number][self.names.title]
            self._records[number][self.names.title] = title[:-1] + _other(title[-1])
        else:
            head, body, signature = self._signatures[number].split(".")
            # The first character holds six whole bits of the signature; the last one
            # holds padding bits a decoder may ignore.
            self._signatures[number] = f"{head}.{body}.{_other(signature[0])}{signature[1:]}"

    def _served(self, number: str) -> JSONObject:
        served = self.get(number)
        assert served is not None
        return served


def _other(char: str) -> str:
    return "B" if char == "A" else "A"


class _TamperRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    what: Tampering


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client is not None else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def document_router(store: DocumentStore, *, on_call: Callable[[str], None]) -> APIRouter:
    """``GET /.well-known/jwks.json`` and ``POST /admin/documents/{number}/tamper``.

    Tampering is for tests and demos; it answers loopback callers only (403 otherwise).
    """
    router = APIRouter()
    public = jwks(store.key)

    @router.get(JWKS_PATH, name="jwks")
    async def get_jwks() -> Response:
        on_call("jwks")
        return json_response(public)

    @router.post(TAMPER_PATH, name="sandbox.tamper")
    async def tamper(
        number: str, body: Annotated[_TamperRequest, Body()], request: Request
    ) -> Response:
        if not _loopback(request):
            return error_response(403, "CHI_TU_MAY_NAY", "Chỉ gọi được từ chính máy này.")
        try:
            store.tamper(number, body.what)
        except KeyError:
            return error_response(404, NOT_FOUND, "Không tìm thấy giấy tờ.")
        return json_response({"so": number, "what": body.what})

    return router


def render_file(title: str, number: str, lines: Sequence[str], issuer: str, issued: str) -> bytes:
    """A document's file: a small fixed text rendering of the certificate (UTF-8)."""
    year, month, day = issued.split("-")
    text = "\n".join(
        (
            "%VN-DOC-1",
            "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
            "Độc lập - Tự do - Hạnh phúc",
            title.upper(),
            f"Số: {number}",
            *lines,
            f"{issuer}, ngày {day} tháng {month} năm {year}",
            "%END",
        )
    )
    return text.encode()
