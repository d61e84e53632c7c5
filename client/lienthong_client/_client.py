"""`GatewayClient` and `AsyncGatewayClient`: one request, signed, sent and judged.

Both run the same steps (`_steps`), which never do I/O themselves: they say what to
send and how long to wait first, and judge each answer. The gateway's rules for
failure are theirs:

- a 503 of the gateway's own (`SERVICE_UNAVAILABLE`, `AUDIT_UNAVAILABLE`,
  `DEADLINE_EXCEEDED`, `CASE_REGISTRY_UNAVAILABLE`) served nothing: the same bytes and
  the same token are sent once more, after its `Retry-After` (the gateway accepts a
  token once more after such a 503);
- a 429 `RATE_LIMITED` is waited out (`Retry-After`) and sent again with a new token,
  at most `rate_limit_retries` times (its token was spent);
- any other refusal is raised at once and never retried.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from lienthong_client._answers import Answer, FieldError, Refused, RequestInvalid, Unavailable
from lienthong_client._receipts import ReceiptKeys
from lienthong_client._tokens import Purpose, Signer, SigningKey
from lienthong_client.log import (
    ProvenLeaf,
    WitnessPolicy,
    parse_verifier_key,
    read_leaf_hash,
    verify_tlog_proof,
)

__all__ = ["AsyncGatewayClient", "GatewayClient"]

RETRY_ONCE: Final = frozenset(
    {
        "SERVICE_UNAVAILABLE",
        "AUDIT_UNAVAILABLE",
        "DEADLINE_EXCEEDED",
        "CASE_REGISTRY_UNAVAILABLE",
    }
)
"""503 codes of the gateway's own after which a token may come once more."""
GRAPHQL_RESPONSE: Final = "application/graphql-response+json"

_CONSENT = "id status procedure fields case requestedAt answerBy validFrom validUntil revokedAt"
_PREFILL = """query Prefill($procedure: String!, $applicant: String!) {
  prefill(procedure: $procedure, applicant: $applicant) {
    procedure { code codeStatus name { vi en } onlineLevel }
    fields { name label { vi en } path value error replacesPapers { vi en }
             provenance { source basis legalBasis consentId retrievedAt } }
    papersAvoided { paper { vi en } fields reasons { path code } }
    papersStillNeeded { paper { vi en } fields reasons { path code } }
  }
}"""


@dataclass(frozen=True)
class _Send:
    """What to send (the body's exact bytes, with its token), after `wait` seconds."""

    body: bytes
    token: str
    wait: float


def _retry_after(headers: Mapping[str, str], default: float) -> float:
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


def _judge(
    status: int, headers: Mapping[str, str], content: bytes, *, reused: bool
) -> Answer | Refused | Unavailable:
    """An answer, or the error it means."""
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    request_id = headers.get("x-request-id")
    if isinstance(body, dict) and ("data" in body or "errors" in body) and status in (200, 400):
        if "data" not in body and body.get("errors"):
            errors = [FieldError.parse(e) for e in body["errors"]]
            return RequestInvalid(errors, status=status)
        return Answer.parse(body, status=status, request_id=request_id, reused=reused)
    kind = Unavailable if status >= 500 else Refused
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        return kind(
            body["code"],
            str(body.get("message", "")),
            status=status,
            detail=body.get("detail") if isinstance(body.get("detail"), dict) else None,
            retry_after=_retry_after(headers, 0.0) if "retry-after" in headers else None,
        )
    return kind(f"HTTP_{status}", "The answer is not the gateway's.", status=status)


class _Core:
    """What both clients share: the signer, the rules, the steps."""

    def __init__(
        self,
        url: str,
        client_id: str,
        key: SigningKey,
        kid: str,
        *,
        audience: str | None,
        ttl: int,
        rate_limit_retries: int,
        max_wait: float,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("url is the gateway's address, e.g. https://gateway.example")
        self.url = url.rstrip("/")
        # The tokens' audience is the gateway's origin unless it says otherwise.
        origin = f"{parts.scheme}://{parts.netloc}"
        self.signer = Signer(client_id, key, kid, audience=audience or origin, ttl=ttl)
        self.rate_limit_retries = rate_limit_retries
        self.max_wait = max_wait

    def steps(self, body: bytes, purpose: Purpose) -> Generator[_Send, Any, Answer]:
        """Send `body` under `purpose` until it is answered or refused for good."""
        token = self.signer.sign(body, purpose)
        reused = rate_limited = 0
        wait = 0.0
        while True:
            status, headers, content = yield _Send(body, token, wait)
            outcome = _judge(status, headers, content, reused=reused > 0)
            if isinstance(outcome, Answer):
                return outcome
            wait = min(outcome.retry_after or 1.0, self.max_wait)
            if outcome.status == 503 and outcome.code in RETRY_ONCE and not reused:
                reused += 1  # the same token, once
                continue
            if outcome.code == "RATE_LIMITED" and rate_limited < self.rate_limit_retries:
                rate_limited += 1
                token = self.signer.sign(body, purpose)
                continue
            raise outcome

    @staticmethod
    def body(query: str, variables: Mapping[str, Any] | None, compact: bool) -> bytes:
        document: dict[str, Any] = {"query": query}
        if variables:
            document["variables"] = dict(variables)
        if compact:
            document["extensions"] = {"provenance": "compact"}
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _headers(token: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": GRAPHQL_RESPONSE,
    }


def _request_consent(
    subject: str, fields: list[str], valid_until: str, procedure: str
) -> tuple[str, dict[str, Any]]:
    mutation = (
        "mutation($s: String!, $p: String!, $f: [String!]!, $u: DateTime!) {"
        " requestConsent(subject: $s, procedure: $p, fields: $f, validUntil: $u)"
        f" {{ {_CONSENT} }} }}"
    )
    return mutation, {"s": subject, "p": procedure, "f": fields, "u": valid_until}


_CONSENT_STATUS = f"query($id: ID!) {{ consent(id: $id) {{ {_CONSENT} }} }}"


def _check_proof(
    answer: Answer, proof: bytes, log_keys: str, witnesses: WitnessPolicy | None
) -> ProvenLeaf:
    """The receipt's leaf proven in a checkpoint one of `log_keys` signed (C2SP verifier
    keys, one a line), and cosigned as `witnesses` asks; `ValueError` saying what is
    wrong."""
    if answer.receipt is None:
        raise ValueError("the answer has no receipt")
    verifiers = [parse_verifier_key(line) for line in log_keys.split() if line]
    leaf = read_leaf_hash(answer.receipt.leaf_hash)
    proven = verify_tlog_proof(proof.decode(), verifiers, leaf_hash=leaf)
    if witnesses is not None:
        witnesses.check(proven.checkpoint.note)
    return proven


def _consent(answer: Answer, field: str) -> dict[str, Any] | None:
    if answer.errors and (answer.data is None or answer.data.get(field) is None):
        error = answer.errors[0]
        raise Refused(error.code, error.message, status=answer.status)
    return None if answer.data is None else answer.data.get(field)


class _Client:
    """What both clients hold: the steps and signer, the gateway's receipt keys."""

    def __init__(
        self,
        url: str,
        client_id: str,
        key: SigningKey,
        kid: str,
        audience: str | None,
        ttl: int,
        rate_limit_retries: int,
        max_wait: float,
    ) -> None:
        self._core = _Core(
            url,
            client_id,
            key,
            kid,
            audience=audience,
            ttl=ttl,
            rate_limit_retries=rate_limit_retries,
            max_wait=max_wait,
        )
        self._receipt_keys = ReceiptKeys()

    @property
    def signer(self) -> Signer:
        """The client's signer (for load tests: `signer.sign_many`)."""
        return self._core.signer


class GatewayClient(_Client):
    """Calls the gateway for one client (a case-handling system) with one of its keys.

    ```python
    gateway = GatewayClient("https://gateway.example", "VN/GOV/SO-TU-PHAP/hcc", key_pem, "k1")
    answer = gateway.query(QUERY, {"id": pid}, purpose=Purpose("1.000656", "HS-1", "cb-7", (pid,)))
    ```
    `key`: the client's private key (Ed25519 or P-256; PEM path or bytes, or a key
    object). `audience`: the gateway's `GATEWAY_ORIGIN` when it differs from `url`.
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        key: SigningKey,
        kid: str,
        *,
        audience: str | None = None,
        ttl: int = 120,
        timeout: float = 15.0,
        rate_limit_retries: int = 2,
        max_wait: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(url, client_id, key, kid, audience, ttl, rate_limit_retries, max_wait)
        self._http = httpx.Client(base_url=self._core.url, timeout=timeout, transport=transport)

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def query(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        purpose: Purpose,
        compact_provenance: bool = False,
    ) -> Answer:
        """Run a GraphQL query (or mutation) for `purpose`; field errors are in the answer."""
        steps = self._core.steps(self._core.body(query, variables, compact_provenance), purpose)
        send = next(steps)
        while True:
            if send.wait:
                time.sleep(send.wait)
            try:
                response = self._http.post(
                    "/graphql", content=send.body, headers=_headers(send.token)
                )
            except httpx.TransportError as exc:
                raise Unavailable("UNREACHABLE", type(exc).__name__, status=0) from exc
            try:
                send = steps.send((response.status_code, response.headers, response.content))
            except StopIteration as done:
                answer: Answer = done.value
                return answer

    def prefill(self, procedure: str, applicant: str, *, purpose: Purpose) -> Answer:
        """The procedure's e-form filled for `applicant` (`data["prefill"]`)."""
        return self.query(
            _PREFILL, {"procedure": procedure, "applicant": applicant}, purpose=purpose
        )

    def request_consent(
        self, subject: str, fields: list[str], valid_until: str, *, purpose: Purpose
    ) -> dict[str, Any] | None:
        """Ask `subject` for consent to read `fields` for the purpose's procedure and
        case, until `valid_until` (RFC 3339); the consent, `REQUESTED`."""
        mutation, variables = _request_consent(subject, fields, valid_until, purpose.procedure)
        return _consent(self.query(mutation, variables, purpose=purpose), "requestConsent")

    def consent_status(self, consent_id: str, *, purpose: Purpose) -> dict[str, Any] | None:
        """A consent this client requested, with its status now."""
        answer = self.query(_CONSENT_STATUS, {"id": consent_id}, purpose=purpose)
        return _consent(answer, "consent")

    def verify_receipt(self, answer: Answer) -> bool:
        """Whether the answer's receipt is signed by the gateway's receipts key (its
        published JWKS, fetched once and again for a key it does not know yet)."""
        if answer.receipt is None:
            return False
        receipt = answer.receipt
        if not self._receipt_keys.knows(receipt.kid):
            self._receipt_keys.load(self._http.get("/.well-known/jwks.json").json())
        return self._receipt_keys.verify(receipt)

    def inclusion_proof(self, answer: Answer) -> bytes | None:
        """The receipt's offline proof (c2sp.org/tlog-proof), or `None` until the log
        has integrated its record (within the receipt's merge delay)."""
        if answer.receipt is None:
            return None
        response = self._http.get("/log/tlog-proof", params={"hash": answer.receipt.leaf_hash})
        return response.content if response.status_code == 200 else None

    def check_inclusion(
        self,
        answer: Answer,
        proof: bytes,
        *,
        log_keys: str | None = None,
        witnesses: WitnessPolicy | None = None,
    ) -> ProvenLeaf:
        """Check `proof` (from `inclusion_proof`) offline with the log's offline core: the
        checkpoint signed by one of `log_keys` (C2SP verifier keys, one a line; default:
        the gateway's `/log/key`, which trusts the gateway for its own key), the receipt's
        leaf under its root, and, with `witnesses` (a policy the reader holds, never
        taken from the gateway), at least its quorum of their cosignatures on the
        checkpoint: the one every reader sees. `ValueError` saying what is wrong."""
        keys = log_keys if log_keys is not None else self._http.get("/log/key").text
        return _check_proof(answer, proof, keys, witnesses)


class AsyncGatewayClient(_Client):
    """`GatewayClient` for asyncio programs (and load generators)."""

    def __init__(
        self,
        url: str,
        client_id: str,
        key: SigningKey,
        kid: str,
        *,
        audience: str | None = None,
        ttl: int = 120,
        timeout: float = 15.0,
        rate_limit_retries: int = 2,
        max_wait: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(url, client_id, key, kid, audience, ttl, rate_limit_retries, max_wait)
        self._http = httpx.AsyncClient(
            base_url=self._core.url, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncGatewayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def query(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        purpose: Purpose,
        compact_provenance: bool = False,
    ) -> Answer:
        """See `GatewayClient.query`."""
        steps = self._core.steps(self._core.body(query, variables, compact_provenance), purpose)
        send = next(steps)
        while True:
            if send.wait:
                await asyncio.sleep(send.wait)
            try:
                response = await self._http.post(
                    "/graphql", content=send.body, headers=_headers(send.token)
                )
            except httpx.TransportError as exc:
                raise Unavailable("UNREACHABLE", type(exc).__name__, status=0) from exc
            try:
                send = steps.send((response.status_code, response.headers, response.content))
            except StopIteration as done:
                answer: Answer = done.value
                return answer

    async def prefill(self, procedure: str, applicant: str, *, purpose: Purpose) -> Answer:
        """See `GatewayClient.prefill`."""
        variables = {"procedure": procedure, "applicant": applicant}
        return await self.query(_PREFILL, variables, purpose=purpose)

    async def request_consent(
        self, subject: str, fields: list[str], valid_until: str, *, purpose: Purpose
    ) -> dict[str, Any] | None:
        """See `GatewayClient.request_consent`."""
        mutation, variables = _request_consent(subject, fields, valid_until, purpose.procedure)
        return _consent(await self.query(mutation, variables, purpose=purpose), "requestConsent")

    async def consent_status(self, consent_id: str, *, purpose: Purpose) -> dict[str, Any] | None:
        """See `GatewayClient.consent_status`."""
        answer = await self.query(_CONSENT_STATUS, {"id": consent_id}, purpose=purpose)
        return _consent(answer, "consent")

    async def verify_receipt(self, answer: Answer) -> bool:
        """See `GatewayClient.verify_receipt`."""
        if answer.receipt is None:
            return False
        if not self._receipt_keys.knows(answer.receipt.kid):
            self._receipt_keys.load((await self._http.get("/.well-known/jwks.json")).json())
        return self._receipt_keys.verify(answer.receipt)

    async def inclusion_proof(self, answer: Answer) -> bytes | None:
        """See `GatewayClient.inclusion_proof`."""
        if answer.receipt is None:
            return None
        params = {"hash": answer.receipt.leaf_hash}
        response = await self._http.get("/log/tlog-proof", params=params)
        return response.content if response.status_code == 200 else None

    async def check_inclusion(
        self,
        answer: Answer,
        proof: bytes,
        *,
        log_keys: str | None = None,
        witnesses: WitnessPolicy | None = None,
    ) -> ProvenLeaf:
        """See `GatewayClient.check_inclusion`."""
        keys = log_keys if log_keys is not None else (await self._http.get("/log/key")).text
        return _check_proof(answer, proof, keys, witnesses)
