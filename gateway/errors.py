"""The gateway's error tree.

Every error a client can see is a subclass of `GatewayError` with a stable `code`.
The code travels to GraphQL `extensions.code` and to REST error bodies
`{"code", "message", "detail"}`. Anything else raised while serving a request is
unexpected: it is logged with the request id and answered as `INTERNAL`.

```
GatewayError (INTERNAL, 500)
├── RequestError (BAD_REQUEST, 400) ............ the HTTP request itself is unusable
│   ├── BadJson (BAD_JSON, 400)
│   ├── MethodNotAllowed (METHOD_NOT_ALLOWED, 405)
│   ├── NotAcceptable (NOT_ACCEPTABLE, 406)
│   ├── PayloadTooLarge (PAYLOAD_TOO_LARGE, 413)
│   └── UnsupportedMediaType (UNSUPPORTED_MEDIA_TYPE, 415)
├── Unauthenticated (UNAUTHENTICATED, 401) ....... no usable credential
│   ├── BadSignature (BAD_SIGNATURE, 401) ....... not signed by a key of the issuer
│   ├── TokenExpired (TOKEN_EXPIRED, 401)
│   ├── TokenReplayed (TOKEN_REPLAYED, 401) ..... the token's jti was used before
│   └── RequestMismatch (REQUEST_MISMATCH, 401) . the token signs another request body
├── Forbidden (FORBIDDEN, 403) .................. signed in, but not allowed this
├── RateLimited (RATE_LIMITED, 429)
├── InvalidPurpose (INVALID_PURPOSE, 400) ....... the stated purpose is malformed
├── CaseNotConfirmed (CASE_NOT_CONFIRMED, 403) .. the dossier registry does not confirm the case
├── PolicyDenied (POLICY_DENIED, 403) ........... a decision withheld a field
│   ├── ClientNotAuthorised (CLIENT_NOT_AUTHORISED) the client's agency may not run it
│   ├── SubjectNotInCase (SUBJECT_NOT_IN_CASE) .. the subject is not in the purpose
│   ├── PurposeNotAllowed (PURPOSE_NOT_ALLOWED) . the procedure does not need the field
│   └── ConsentRequired (CONSENT_REQUIRED) ...... needs the citizen's active consent
├── Conflict (CONFLICT, 409) .................... the record is not in a state for this
│   ├── RetentionNotOver (RETENTION_NOT_OVER) ... forgetting before the retention ends
│   └── LogDiscontinuity (LOG_DISCONTINUITY) .... the log is not what was published of it
│       ├── LogBehindPublished (LOG_BEHIND_PUBLISHED) smaller than a checkpoint published
│       └── LogInconsistentWithPublished (LOG_INCONSISTENT_WITH_PUBLISHED) another history
├── AuditUnavailable (AUDIT_UNAVAILABLE, 503) ... the access could not be recorded
├── DeadlineExceeded (DEADLINE_EXCEEDED, 503) ... not answered and recorded in time
├── ServiceUnavailable (SERVICE_UNAVAILABLE, 503) a dependency (Redis) does not answer
├── CaseRegistryUnavailable (CASE_REGISTRY_UNAVAILABLE, 503) no registry answer to confirm by
├── InvalidIdentifier (INVALID_IDENTIFIER, 400) . malformed personal id or tax code
├── InvalidArgument (INVALID_ARGUMENT, 400) ..... e.g. a list argument over its cap
│   └── InvalidManifest (INVALID_MANIFEST, 422) . a connector manifest, naming the field
├── NotFound (NOT_FOUND, 404)
├── NoSource (NO_SOURCE) ........................ no active connector serves the field
└── SourceError (SOURCE_ERROR, 502) ............. a source answered badly or not at all
    ├── SourceUnavailable (SOURCE_UNAVAILABLE) .. retriable: refused, 5xx, 429
    ├── SourceTimeout (SOURCE_TIMEOUT) .......... retriable: no answer in time
    ├── SourceRejected (SOURCE_REJECTED) ........ fatal: 4xx other than 404/429
    ├── SourceDataInvalid (SOURCE_DATA_INVALID) . fatal: the answer does not fit the schema
    │   └── DocumentSignatureInvalid (DOCUMENT_SIGNATURE_INVALID) not as its issuer signed it
    └── SourceRateLimited (SOURCE_RATE_LIMITED) . not sent: over the source's rate limit
```

The 503s of the gateway itself (`AuditUnavailable`, `DeadlineExceeded`,
`ServiceUnavailable`) say when to retry (`retry_after`, the `Retry-After` header).

Which source failures are retriable is decided in one place, `SourceError.retriable`,
and the REST connector classifies HTTP outcomes with `classify_status`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "AuditUnavailable",
    "BadJson",
    "BadSignature",
    "CaseNotConfirmed",
    "CaseRegistryUnavailable",
    "ClientNotAuthorised",
    "Conflict",
    "ConsentRequired",
    "DeadlineExceeded",
    "DocumentSignatureInvalid",
    "Forbidden",
    "GatewayError",
    "InvalidArgument",
    "InvalidIdentifier",
    "InvalidManifest",
    "InvalidPurpose",
    "LogBehindPublished",
    "LogDiscontinuity",
    "LogInconsistentWithPublished",
    "MethodNotAllowed",
    "NoSource",
    "NotAcceptable",
    "NotFound",
    "PayloadTooLarge",
    "PolicyDenied",
    "PurposeNotAllowed",
    "RateLimited",
    "RequestError",
    "RequestMismatch",
    "RetentionNotOver",
    "ServiceUnavailable",
    "SourceDataInvalid",
    "SourceError",
    "SourceRateLimited",
    "SourceRejected",
    "SourceTimeout",
    "SourceUnavailable",
    "SubjectNotInCase",
    "TokenExpired",
    "TokenReplayed",
    "Unauthenticated",
    "UnsupportedMediaType",
    "classify_status",
]

_RETRY_AFTER = 5
"""Seconds a client waits before retrying after a 503 of the gateway's own."""


class GatewayError(Exception):
    """Root of every error the gateway reports on purpose."""

    code: ClassVar[str] = "INTERNAL"
    http_status: ClassVar[int] = 500
    default_message: ClassVar[str] = "Internal error."
    retry_after: int | None = None
    """Seconds after which a retry may succeed (`Retry-After`), when it may."""

    def __init__(self, message: str | None = None, **detail: Any) -> None:
        self.message = message or self.default_message
        self.detail: dict[str, Any] = detail
        super().__init__(self.message)

    @property
    def extensions(self) -> dict[str, Any]:
        """What GraphQL puts in `extensions` (graphql-core reads this attribute)."""
        return {"code": self.code, **self.detail}

    def to_body(self) -> dict[str, Any]:
        """REST error body."""
        return {"code": self.code, "message": self.message, "detail": self.detail}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class RequestError(GatewayError):
    code = "BAD_REQUEST"
    http_status = 400
    default_message = "The request cannot be used."


class BadJson(RequestError):
    code = "BAD_JSON"
    default_message = "The request body is not valid JSON."


class MethodNotAllowed(RequestError):
    code = "METHOD_NOT_ALLOWED"
    http_status = 405
    default_message = "This method is not allowed here."

    def __init__(self, message: str | None = None, *, allow: str, **detail: Any) -> None:
        super().__init__(message, **detail)
        self.allow = allow


class NotAcceptable(RequestError):
    code = "NOT_ACCEPTABLE"
    http_status = 406
    default_message = (
        "None of the accepted media types can be produced; "
        "accept application/graphql-response+json or application/json."
    )


class PayloadTooLarge(RequestError):
    code = "PAYLOAD_TOO_LARGE"
    http_status = 413
    default_message = "The request body is larger than the gateway accepts."


class UnsupportedMediaType(RequestError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    http_status = 415
    default_message = "Send the request as application/json."


class Unauthenticated(GatewayError):
    code = "UNAUTHENTICATED"
    http_status = 401
    default_message = "Send a valid bearer token."


class BadSignature(Unauthenticated):
    code = "BAD_SIGNATURE"
    default_message = "The token is not signed by a key registered to its issuer."


class TokenExpired(Unauthenticated):
    code = "TOKEN_EXPIRED"
    default_message = "The token has expired."


class TokenReplayed(Unauthenticated):
    code = "TOKEN_REPLAYED"
    default_message = "This token was used before; sign a new one for every request."


class RequestMismatch(Unauthenticated):
    code = "REQUEST_MISMATCH"
    default_message = "The token's `req` is not the SHA-256 of this request body."


class Forbidden(GatewayError):
    code = "FORBIDDEN"
    http_status = 403
    default_message = "This identity may not do this."


class RateLimited(GatewayError):
    code = "RATE_LIMITED"
    http_status = 429
    default_message = "Too many requests; retry later."

    def __init__(self, message: str | None = None, *, retry_after: int, **detail: Any) -> None:
        super().__init__(message, retryAfter=retry_after, **detail)
        self.retry_after = retry_after


class InvalidPurpose(GatewayError):
    code = "INVALID_PURPOSE"
    http_status = 400
    default_message = "The token's purpose is malformed."


class CaseNotConfirmed(GatewayError):
    """The case's dossier fails a check; `detail.check` names which, never its persons."""

    code = "CASE_NOT_CONFIRMED"
    http_status = 403
    default_message = "The dossier registry does not confirm the case for this request."


class PolicyDenied(GatewayError):
    code = "POLICY_DENIED"
    http_status = 403
    default_message = "Withheld by policy."


class ClientNotAuthorised(PolicyDenied):
    code = "CLIENT_NOT_AUTHORISED"
    default_message = "The client's agency does not run this procedure."


class SubjectNotInCase(PolicyDenied):
    code = "SUBJECT_NOT_IN_CASE"
    default_message = "This person or enterprise is not a subject of the stated case."


class PurposeNotAllowed(PolicyDenied):
    code = "PURPOSE_NOT_ALLOWED"
    default_message = "The stated procedure does not need this field."


class ConsentRequired(PolicyDenied):
    code = "CONSENT_REQUIRED"
    default_message = "This field needs the citizen's active consent for this procedure."


class Conflict(GatewayError):
    code = "CONFLICT"
    http_status = 409
    default_message = "The record is not in a state that allows this."


class RetentionNotOver(Conflict):
    """A record of the person is still within its retention period."""

    code = "RETENTION_NOT_OVER"
    default_message = "The person's records are still within their retention period."


class LogDiscontinuity(Conflict):
    """The log in the database does not continue what was published of it (a restore of
    an older backup, or another history): nothing is signed until an operator chooses."""

    code = "LOG_DISCONTINUITY"
    default_message = "The log does not continue the newest checkpoint published of it."


class LogBehindPublished(LogDiscontinuity):
    """The log has fewer leaves than a checkpoint published of it."""

    code = "LOG_BEHIND_PUBLISHED"
    default_message = "The log has fewer leaves than a checkpoint published of it."


class LogInconsistentWithPublished(LogDiscontinuity):
    """The log's tree at a published checkpoint's size has another root."""

    code = "LOG_INCONSISTENT_WITH_PUBLISHED"
    default_message = "The log is not consistent with a checkpoint published of it."


class AuditUnavailable(GatewayError):
    code = "AUDIT_UNAVAILABLE"
    http_status = 503
    default_message = "The access could not be recorded, so no data was released."
    retry_after = _RETRY_AFTER


class DeadlineExceeded(GatewayError):
    code = "DEADLINE_EXCEEDED"
    http_status = 503
    default_message = (
        "The request could not be answered and recorded in time, so no data was released."
    )
    retry_after = _RETRY_AFTER


class ServiceUnavailable(GatewayError):
    code = "SERVICE_UNAVAILABLE"
    http_status = 503
    default_message = "A service the gateway depends on does not answer; retry shortly."
    retry_after = _RETRY_AFTER


class CaseRegistryUnavailable(GatewayError):
    """A procedure whose cases must be confirmed, and no dossier registry answered."""

    code = "CASE_REGISTRY_UNAVAILABLE"
    http_status = 503
    default_message = (
        "The dossier registry could not confirm the case, so no data was read; retry shortly."
    )
    retry_after = _RETRY_AFTER


class InvalidIdentifier(GatewayError):
    code = "INVALID_IDENTIFIER"
    http_status = 400
    default_message = "The identifier is malformed."


class InvalidArgument(GatewayError):
    code = "INVALID_ARGUMENT"
    http_status = 400
    default_message = "An argument is not acceptable."


class InvalidManifest(InvalidArgument):
    """A connector manifest that cannot be registered: `detail.field` names the field."""

    code = "INVALID_MANIFEST"
    http_status = 422
    default_message = "The manifest cannot be registered."


class NotFound(GatewayError):
    code = "NOT_FOUND"
    http_status = 404
    default_message = "No such record."


class NoSource(GatewayError):
    code = "NO_SOURCE"
    http_status = 501
    default_message = "No active source provides this field."


class SourceError(GatewayError):
    code = "SOURCE_ERROR"
    http_status = 502
    default_message = "The source failed."
    retriable: ClassVar[bool] = False

    def __init__(self, message: str | None = None, *, source: str, **detail: Any) -> None:
        super().__init__(message, source=source, **detail)
        self.source = source


class SourceUnavailable(SourceError):
    code = "SOURCE_UNAVAILABLE"
    http_status = 503
    default_message = "The source is unavailable."
    retriable = True


class SourceTimeout(SourceError):
    code = "SOURCE_TIMEOUT"
    http_status = 504
    default_message = "The source did not answer in time."
    retriable = True


class SourceRejected(SourceError):
    code = "SOURCE_REJECTED"
    default_message = "The source rejected the lookup."


class SourceDataInvalid(SourceError):
    code = "SOURCE_DATA_INVALID"
    default_message = "The source answered with data that does not fit the schema."


class DocumentSignatureInvalid(SourceDataInvalid):
    """A digitized result that is not as its issuer signed it: withheld, never served."""

    code = "DOCUMENT_SIGNATURE_INVALID"
    default_message = "The document is not as its issuer signed it; it is withheld."


class SourceRateLimited(SourceError):
    """The call was not made: the source's rate limit (its manifest's `rate_limit`) had
    no permit before the request's deadline. Not retriable, and no failure of the
    source: the limit is the gateway's own."""

    code = "SOURCE_RATE_LIMITED"
    http_status = 503
    default_message = "The source's rate limit allows no call in time."


def classify_status(
    status: int, *, source: str, detail: Mapping[str, Any] | None = None
) -> SourceError | None:
    """Map a source's HTTP status to an error, or `None` when the answer is usable.

    429 and 5xx are retriable (`SourceUnavailable`); any other 4xx but 404 is fatal
    (`SourceRejected`). 404 is usable: the record does not exist.
    """
    if status < 400 or status == 404:
        return None
    extra = dict(detail or {})
    if status == 429 or status >= 500:
        return SourceUnavailable(source=source, status=status, **extra)
    return SourceRejected(source=source, status=status, **extra)
