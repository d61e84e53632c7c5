"""What the gateway answers, as typed objects, and the errors it refuses with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Answer",
    "FieldError",
    "GatewayError",
    "Provenance",
    "Receipt",
    "Refused",
    "RequestInvalid",
    "Unavailable",
]


class GatewayError(Exception):
    """The gateway did not answer the request with data.

    `code` is the gateway's stable code (`TOKEN_REPLAYED`, `RATE_LIMITED`, ...), `status`
    the HTTP status, `retry_after` the seconds it asked to wait, if any.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int,
        detail: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.detail = dict(detail or {})
        self.retry_after = retry_after


class Refused(GatewayError):
    """A refusal (4xx): sending the same request again gets the same answer."""


class Unavailable(GatewayError):
    """The gateway or what it depends on could not serve now (5xx, or no answer)."""


class RequestInvalid(Refused):
    """The GraphQL request cannot run (syntax, validation, limits): `errors` say why."""

    def __init__(self, errors: Sequence[FieldError], *, status: int) -> None:
        first = errors[0] if errors else None
        super().__init__(
            first.code if first else "BAD_REQUEST",
            first.message if first else "The request cannot run.",
            status=status,
        )
        self.errors = list(errors)


@dataclass(frozen=True)
class FieldError:
    """A field the gateway did not serve: where, and the code saying why."""

    message: str
    path: tuple[str | int, ...]
    code: str
    extensions: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, item: Mapping[str, Any]) -> FieldError:
        extensions = dict(item.get("extensions") or {})
        return cls(
            message=str(item.get("message", "")),
            path=tuple(item.get("path") or ()),
            code=str(extensions.get("code", "UNKNOWN")),
            extensions=extensions,
        )


@dataclass(frozen=True)
class Provenance:
    """Where the value at a response path came from and why it was released."""

    path: str
    source: str
    retrieved_at: str
    basis: str
    """`law` or `consent`."""
    legal_basis: str | None = None
    consent_id: str | None = None
    version: int | None = None

    @classmethod
    def parse(cls, path: str, entry: Mapping[str, Any]) -> Provenance:
        return cls(
            path=path,
            source=str(entry["source"]),
            retrieved_at=str(entry["retrievedAt"]),
            basis=str(entry["basis"]),
            legal_basis=entry.get("legalBasis"),
            consent_id=entry.get("consentId"),
            version=entry.get("version"),
        )


def _provenance(value: Any) -> dict[str, Provenance]:
    """By response path, from the full form (a map) or the compact one (a list)."""
    if isinstance(value, Mapping):
        return {path: Provenance.parse(path, entry) for path, entry in value.items()}
    found: dict[str, Provenance] = {}
    for group in value or ():
        entry = {k: v for k, v in group.items() if k != "paths"}
        for path in group.get("paths", ()):
            found[path] = Provenance.parse(path, entry)
    return found


@dataclass(frozen=True)
class Receipt:
    """The gateway's signed promise that the answer's access record is in its log."""

    leaf_hash: str
    timestamp: str
    origin: str
    max_merge_delay_seconds: float
    kid: str
    signature: str
    document: Mapping[str, Any] = field(repr=False)
    """The receipt as the gateway sent it (what its signature covers, with `kid`)."""

    @classmethod
    def parse(cls, document: Mapping[str, Any]) -> Receipt:
        return cls(
            leaf_hash=str(document["leafHash"]),
            timestamp=str(document["timestamp"]),
            origin=str(document["origin"]),
            max_merge_delay_seconds=float(document["maxMergeDelaySeconds"]),
            kid=str(document["kid"]),
            signature=str(document["signature"]),
            document=dict(document),
        )


@dataclass(frozen=True)
class Answer:
    """A GraphQL answer: data, the fields not served, provenance, the receipt."""

    data: Mapping[str, Any] | None
    errors: list[FieldError]
    provenance: dict[str, Provenance]
    receipt: Receipt | None
    status: int
    request_id: str | None = None
    reused_token: bool = False
    """Whether it was served on the one retry the gateway allows after its own 503."""

    @classmethod
    def parse(
        cls, body: Mapping[str, Any], *, status: int, request_id: str | None, reused: bool
    ) -> Answer:
        extensions = body.get("extensions") or {}
        receipt = extensions.get("receipt")
        return cls(
            data=body.get("data"),
            errors=[FieldError.parse(e) for e in body.get("errors") or ()],
            provenance=_provenance(extensions.get("provenance")),
            receipt=None if receipt is None else Receipt.parse(receipt),
            status=status,
            request_id=request_id,
            reused_token=reused,
        )

    def error_at(self, *path: str | int) -> FieldError | None:
        """The error of the field at `path`, if it was not served."""
        return next((e for e in self.errors if e.path == path), None)
