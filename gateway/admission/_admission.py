"""Admission of a GraphQL request, and its access record.

Admission verifies the request token, applies the rate limits, and prepares what the
resolvers decide with: the client, the purpose, and the citizen consents in force for
its subjects. The record of the request is written (and must be committed) before any
answer leaves; a request refused after its signature checked out is recorded too, by
the rule for refusals (`gateway.admission._refusals`). A request the gateway itself
answers 503 after its token was spent releases the token for one retry
(`gateway.admission._replay`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from connectors import ConnectorRegistry, FetchContext
from gateway import tracing
from gateway.admission._cases import Cases, Confirmation
from gateway.admission._ratelimit import (
    Hit,
    Limit,
    RateLimiter,
    check_limits,
    exceeded,
    hits_of,
)
from gateway.admission._refusals import Refusals
from gateway.admission._tokens import RejectedRequest, RequestVerifier, VerifiedRequest
from gateway.errors import (
    AuditUnavailable,
    DeadlineExceeded,
    GatewayError,
    InvalidIdentifier,
    InvalidPurpose,
)
from gateway.identifiers import parse_identifier
from gateway.instants import format_instant
from gateway.records import DecisionEntry, EnvelopeBody, Event, count_access, pseudonym
from policies import (
    MAX_SUBJECTS,
    ActiveConsent,
    Basis,
    CaseConfirmation,
    Catalogue,
    Policy,
    Purpose,
    UnknownProcedure,
    purpose_text,
)
from schema import Access, RequestContext

if TYPE_CHECKING:
    from gateway.log import Receipts

__all__ = ["Admission", "Admitted", "ConsentsInForce", "EventSink", "Limits"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Limits:
    """Requests a minute per client and per officer."""

    per_client: int
    per_officer: int


class ConsentsInForce(Protocol):
    """Where admission finds the consents in force (the consent store, or a test's)."""

    async def active_for(
        self, *, consumer: str, procedure: str, subjects: Sequence[str]
    ) -> Sequence[ActiveConsent]:
        """Consents in force now for these subjects, this consumer and procedure."""
        ...


class EventSink(Protocol):
    """Where admission records (the recorder, or a test's list)."""

    async def record(self, event: Event) -> bytes:
        """Return once `event` is committed: its leaf hash; `AuditUnavailable` if not."""
        ...


@dataclass(frozen=True, slots=True)
class Admitted:
    """An admitted request: who, why, and the context resolvers decide in."""

    verified: VerifiedRequest
    access: Access
    fetch: FetchContext
    case: Confirmation | None = None
    """What the dossier registry said of its case (procedures that ask it only)."""
    catalogue: Catalogue | None = None
    """The catalogue it was admitted and decided under (its record names that version)."""


def _claimed_subjects(purpose: Any) -> list[str]:
    """The well-formed subject ids of a (refused, so unvalidated) purpose claim."""
    claimed = purpose.get("subjects") if isinstance(purpose, dict) else None
    if not isinstance(claimed, list):
        return []
    found = []
    for value in claimed[:MAX_SUBJECTS]:
        with contextlib.suppress(InvalidIdentifier):
            found.append(parse_identifier(value, argument="subject"))
    return found


def _claimed_officer(purpose: Any) -> str | None:
    """The officer of a (refused, so unvalidated) purpose claim, when it is valid text.

    Anything else (a lone surrogate, a NUL) can be neither pseudonymised nor stored;
    the token in the personal part still holds it as sent.
    """
    if not isinstance(purpose, dict):
        return None
    try:
        return purpose_text("officer", purpose.get("officer"))
    except InvalidPurpose:
        return None


def _dossier(case: Confirmation | None, subjects: Sequence[str]) -> dict[str, Any]:
    """The personal part's `dossier`: the registry's answer, when it gave one, naming
    only the persons the record names too (the part is sealed for them, and forgetting
    one of them finds it; the dossier's other persons are not theirs to read)."""
    if case is None or case.answer is None:
        return {}
    named = set(subjects)
    persons = [p for p in case.answer.get("persons") or () if p.get("identifier") in named]
    return {"dossier": {**case.answer, "persons": persons}}


def _is_jti(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 128 and value.isprintable()


class Admission:
    """Admits requests and records them."""

    def __init__(
        self,
        *,
        verifier: RequestVerifier,
        limiter: RateLimiter,
        limits: Limits,
        policy: Policy,
        catalogue: Catalogue,
        consents: ConsentsInForce,
        recorder: EventSink,
        pseudonym_key: bytes,
        refusals: Refusals | None = None,
        cases: Cases | None = None,
    ) -> None:
        self._verifier = verifier
        self._limiter = limiter
        self._limits = limits
        self._per_client = Limit(limiter, "client", limits.per_client)
        self._per_officer = Limit(limiter, "officer", limits.per_officer)
        self._policy = policy
        self._catalogue = catalogue
        self._consents = consents
        self._recorder = recorder
        self._pseudonym_key = pseudonym_key
        self.refusals = refusals or Refusals(recorder, policy_version=catalogue.version)
        """Records refusals; the application starts and stops its flushing."""
        self.cases = cases or Cases(key=pseudonym_key)
        """Confirms cases at the dossier registry (see `gateway.admission._cases`)."""
        self._derive(catalogue)

    def _derive(self, catalogue: Catalogue) -> None:
        self._confirmation = {p.code: p.case_confirmation for p in catalogue}
        # Per procedure, the paths read by consent: only those need consents looked up.
        self._consent_paths = {
            p.code: frozenset(f for f in p.fields if p.basis(f) == Basis.CONSENT) for p in catalogue
        }

    def use_catalogue(self, catalogue: Catalogue, policy: Policy) -> None:
        """Decide under another catalogue (and its engine) from the next request on.

        A request admitted before keeps what it was admitted with: the plan it holds,
        and the `policy_version` its record names.
        """
        self._catalogue = catalogue
        self._policy = policy
        self._derive(catalogue)
        self.refusals.policy_version = catalogue.version
        self._verifier.use_procedures(
            catalogue.get, lambda code: catalogue.get(code).hidden_access_allowed
        )

    async def admit(self, request_id: str, authorization: str | None, raw: bytes) -> Admitted:
        """Admit the request or raise the error to answer (after recording it if signed)."""
        try:
            verified = await self._verifier.verify(authorization, raw, hits=self._hits)
        except RejectedRequest as rejected:
            # Recorded (the first of its client, code and minute in full, the rest
            # summed up when the minute closes) before the refusal is answered.
            await self._record_rejection(request_id, rejected)
            raise rejected.error from None
        client, purpose = verified.client, verified.purpose
        try:
            spent = verified.spent
            if spent is not None and spent.counted:
                exceeded(self._checks(client.id, purpose), spent.over)
            else:
                await check_limits(self._limiter, self._checks(client.id, purpose))
        except GatewayError as exc:
            await self._released_on_503(
                verified,
                self._record_rejection(
                    request_id,
                    RejectedRequest(
                        exc,
                        client=client,
                        token=verified.token,
                        claims={"purpose": purpose.claim()},
                    ),
                    verified=verified,
                ),
                answer=exc,
            )
            raise

        async def consents() -> Sequence[ActiveConsent]:
            try:
                return await self._consents.active_for(
                    consumer=client.id, procedure=purpose.procedure, subjects=purpose.subjects
                )
            except (OSError, SQLAlchemyError) as exc:
                # The database is down: the request is 503, never a field masked INTERNAL.
                raise AuditUnavailable("The consents in force cannot be read.") from exc

        # The catalogue, its engine and what is derived from it, taken together after the
        # last wait: the request is decided, and its record named, under that one.
        catalogue, policy, paths = self._catalogue, self._policy, self._consent_paths
        if purpose.procedure not in catalogue:  # removed since the token was checked
            error = UnknownProcedure(
                f"No procedure {purpose.procedure!r} in the catalogue.",
                procedure=purpose.procedure,
            )
            await self._record_rejection(
                request_id,
                RejectedRequest(
                    error, client=client, token=verified.token, claims={"purpose": purpose.claim()}
                ),
                verified=verified,
            )
            raise error
        access = Access(
            client_id=client.id,
            agency_kinds=client.agency_kinds,
            purpose=purpose,
            policy=policy,
            consent_paths=paths.get(purpose.procedure, frozenset()),
            consent_loader=consents,
        )
        fetch = FetchContext(request_id=request_id, client_id=client.id, purpose=purpose)
        return Admitted(verified, access, fetch, catalogue=catalogue)

    async def confirm_case(
        self,
        request_id: str,
        admitted: Admitted,
        registry: ConnectorRegistry,
        fetch: FetchContext,
    ) -> Admitted:
        """`admitted` with its case confirmed, where its procedure asks it, before any
        decision; or the refusal it is answered with, recorded by the rule for refusals.

        A confirmed dossier leaves the decisions only the subjects it names.
        """
        verified = admitted.verified
        purpose = verified.purpose
        requirement = self._confirmation.get(purpose.procedure, CaseConfirmation.NONE)
        if requirement is CaseConfirmation.NONE:
            return admitted
        with tracing.span("case_confirmation"):
            confirmation = await self.cases.confirm(
                requirement,
                purpose=purpose,
                client_id=verified.client.id,
                registry=registry,
                fetch=fetch,
            )
        assert confirmation is not None
        error = confirmation.error()
        if error is not None:
            refused = RejectedRequest(
                error,
                client=verified.client,
                token=verified.token,
                claims={"purpose": purpose.claim()},
            )
            await self._released_on_503(
                verified,
                self._record_rejection(
                    request_id,
                    refused,
                    verified=verified,
                    case=confirmation,
                    catalogue=admitted.catalogue,
                ),
                answer=error,
            )
            raise error
        access = admitted.access
        narrowed = confirmation.purpose(purpose)
        if narrowed is not purpose:
            access = dataclasses.replace(access, purpose=narrowed)
        return dataclasses.replace(admitted, access=access, case=confirmation)

    def _checks(self, client_id: str, purpose: Purpose) -> list[tuple[Limit, str]]:
        """The rate limits a request counts against, in order: its client's, its officer's."""
        return [
            (self._per_client, client_id),
            (self._per_officer, f"{client_id}\x00{purpose.officer}"),
        ]

    def _hits(self, client_id: str, purpose: Purpose) -> list[Hit]:
        """The hits of `_checks`, for the replay cache to count with the spend."""
        return hits_of(self._checks(client_id, purpose))

    async def deadline_passed(
        self, request_id: str, admitted: Admitted, *, recording: bool
    ) -> None:
        """An admitted request ran out of time: it is answered 503, and nothing was served.

        Its token may come once more. Unless its access record was being written (that
        record commits, and is then marked undelivered), the refusal is recorded by the
        rule for refusals. Best effort: what cannot be written now is counted.
        """
        verified = admitted.verified
        with contextlib.suppress(Exception):  # its own 503 is the answer either way
            await self._verifier.release(verified)
        if recording:
            return
        rejected = RejectedRequest(
            DeadlineExceeded(),
            client=verified.client,
            token=verified.token,
            claims={"purpose": verified.purpose.claim(), "jti": verified.jti},
        )
        with contextlib.suppress(AuditUnavailable):
            await self._record_rejection(
                request_id, rejected, verified=verified, catalogue=admitted.catalogue
            )

    async def _released_on_503(
        self, verified: VerifiedRequest, step: Awaitable[T], *, answer: GatewayError | None = None
    ) -> T:
        """`step`, releasing the token for one retry when the answer is a 503 (see `_replay`).

        The answer is `step`'s error if it raises one, else `answer`. A 503 of the
        gateway's own serves nothing, so the client may send its token again, once.
        """
        try:
            result = await step
        except GatewayError as error:
            answer = error
            raise
        finally:
            if answer is not None and answer.http_status == 503:
                await self._verifier.release(verified)
        return result

    async def record(
        self,
        admitted: Admitted,
        ctx: RequestContext,
        *,
        outcome: str,
        status: int,
        operation: str | None,
        error_codes: Sequence[str],
        receipts: Receipts | None = None,
    ) -> Event:
        """Commit the access record of an executed request; returns it, committed (its
        leaf hash set, and its receipt where `receipts` signs one).

        Raises `AuditUnavailable` when it cannot be committed: the answer is 503 and
        nothing is served, so the token may come once more.
        """
        recording = self._record(
            admitted,
            ctx,
            outcome=outcome,
            status=status,
            operation=operation,
            error_codes=error_codes,
            receipts=receipts,
        )
        with tracing.span("recording", {"gateway.outcome": outcome.partition(":")[0]}):
            return await self._released_on_503(admitted.verified, recording)

    async def _record(
        self,
        admitted: Admitted,
        ctx: RequestContext,
        *,
        outcome: str,
        status: int,
        operation: str | None,
        error_codes: Sequence[str],
        receipts: Receipts | None,
    ) -> Event:
        verified = admitted.verified
        purpose = verified.purpose
        catalogue = admitted.catalogue or self._catalogue
        subjects = list(purpose.subjects)
        index = {s: i for i, s in enumerate(subjects)}
        # One entry per distinct decision, with the positions of the subjects it was
        # taken for (the subjects themselves stay in the personal part): a batch of 20
        # citizens and 5 fields is 5 entries, not 100.
        grouped: dict[tuple[str, str, str | None], list[int]] = {}
        for d in ctx.access.decisions:
            grouped.setdefault((d.path, d.code, d.reference), []).append(index.get(d.subject, -1))
        decisions: list[DecisionEntry] = [
            {"path": path, "decision": code, "basis": basis, "subjects": positions}
            for (path, code, basis), positions in grouped.items()
        ]
        decided = sorted({d.subject for d in ctx.access.decisions})
        action_subjects = [s for a in ctx.actions if (s := a.get("subject")) is not None]
        # What the answer carries: only an answer with data serves anything.
        served = ctx.served if status == 200 else {}
        envelope: EnvelopeBody = {
            **self._who(verified),
            "decisions": decisions,
            "sources": sorted(ctx.sources),
            "sourceCalls": ctx.source_calls,
            "actions": [{k: v for k, v in a.items() if k != "subject"} for a in ctx.actions],
            "status": status,
            "errors": sorted(set(error_codes)),
            "fieldsServed": sum(len(paths) for paths in served.values()),
            "papersAvoided": self._papers_avoided(catalogue, purpose.procedure, served),
        }
        versions = ctx.source_versions()
        if versions:
            # Which connector version (which mapping) produced what the answer carries.
            envelope["sourceVersions"] = versions
        case = admitted.case
        if case is not None:
            envelope["caseConfirmation"] = case.envelope()
        event = Event(
            type="access",
            request_id=ctx.request_id,
            outcome=outcome,
            policy_version=catalogue.version,
            envelope=envelope,
            personal={
                **self._personal(
                    verified.token, subjects, purpose.officer, purpose.case, operation
                ),
                # Per subject, the fields a source answered: what the citizen is
                # told was read (a field allowed but unanswered was not).
                "served": {s: sorted(paths) for s, paths in sorted(served.items())},
                # What sources gave as evidence of the calls (X-Road request hashes:
                # hashes of requests naming people, so here, sealed). Only when any.
                **({"evidence": ctx.evidence.recorded()} if ctx.evidence else {}),
                # The registry's answer about the case (its digest is in the envelope).
                **_dossier(case, subjects),
            },
            # Everyone the purpose names (and whom a decision or action concerned):
            # each of them sees this access, and forgetting one finds it.
            subjects=[*subjects, *decided, *action_subjects],
            client_id=verified.client.id,
            procedure=purpose.procedure,
            # The consents named (a decision's ground, a consent asked for): the
            # envelope holds commitments under the key of the person who gave each.
            consents={
                **{
                    d.reference: d.subject
                    for d in ctx.access.decisions
                    if d.code == "ALLOWED_BY_CONSENT" and d.reference is not None
                },
                **{
                    a["consent"]: a["subject"]
                    for a in ctx.actions
                    if "consent" in a and a.get("subject") is not None
                },
            },
            receipts=receipts,
        )
        await self._recorder.record(event)
        count_access(envelope, outcome)
        return event

    @staticmethod
    def _papers_avoided(catalogue: Catalogue, procedure: str, served: dict[str, set[str]]) -> int:
        """Papers replaced, per subject, by fields that were all served."""
        papers = catalogue.get(procedure).papers_replaced
        return sum(1 for paths in served.values() for paper in papers if set(paper.fields) <= paths)

    def _who(self, verified: VerifiedRequest) -> EnvelopeBody:
        purpose = verified.purpose
        who: EnvelopeBody = {
            "client": verified.client.id,
            "organisation": verified.client.organisation,
            "kid": verified.kid,
            # Officer ids and case numbers can name people: pseudonyms here, the values
            # in the personal part. The same pseudonym finds a case's or officer's events.
            "officer": pseudonym(self._pseudonym_key, purpose.officer, "officer"),
            "procedure": purpose.procedure,
            "case": pseudonym(self._pseudonym_key, purpose.case, "case"),
            "subjects": len(purpose.subjects),
            "jti": verified.jti,
        }
        if verified.reused:
            who["reusesRefusedToken"] = True
        if purpose.hidden_until is not None:
            who["hiddenUntil"] = format_instant(purpose.hidden_until)
        return who

    @staticmethod
    def _personal(
        token: str,
        subjects: Sequence[str],
        officer: str | None,
        case: str | None = None,
        operation: str | None = None,
    ) -> dict[str, Any]:
        return {
            "subjects": list(subjects),
            "officer": officer,
            "case": case,
            "operation": operation,
            "token": token,
        }

    async def _record_rejection(
        self,
        request_id: str,
        rejected: RejectedRequest,
        *,
        verified: VerifiedRequest | None = None,
        case: Confirmation | None = None,
        catalogue: Catalogue | None = None,
    ) -> None:
        """Record a refusal, naming the catalogue the request was admitted under (if it
        was), else the one in effect."""
        purpose = rejected.claims.get("purpose") if isinstance(rejected.claims, dict) else None
        officer = _claimed_officer(purpose)
        procedure = purpose.get("procedure") if isinstance(purpose, dict) else None
        envelope: EnvelopeBody = (
            self._who(verified)
            if verified is not None
            else {
                "client": rejected.client.id,
                "organisation": rejected.client.organisation,
                "officer": pseudonym(self._pseudonym_key, officer, "officer")
                if isinstance(officer, str)
                else None,
                # Signed but not validated: kept only when it is a catalogue code.
                "procedure": procedure
                if isinstance(procedure, str) and procedure in self._catalogue
                else None,
            }
        )
        if verified is None and (hidden := self._verifier.claimed_hiding(purpose)) is not None:
            envelope["hiddenUntil"] = format_instant(hidden)
        error = rejected.error
        if case is not None:
            envelope["caseConfirmation"] = case.envelope()
        envelope.update({"status": error.http_status, "errors": [error.code]})
        jti = rejected.claims.get("jti")
        if error.http_status == 503 and "jti" not in envelope and _is_jti(jti):
            # Its client may send the token once more: the retry's record names it too.
            envelope["jti"] = str(jti)
        await self.refusals.refused(
            Event(
                type="access",
                request_id=request_id,
                outcome=f"rejected:{rejected.error.code}",
                policy_version=(catalogue or self._catalogue).version,
                envelope=envelope,
                personal={
                    **self._personal(
                        rejected.token, [], officer if isinstance(officer, str) else None
                    ),
                    **_dossier(case, _claimed_subjects(purpose)),
                },
                # The people the refused token named: they see the attempt, and
                # forgetting one of them finds this record (its token names them).
                subjects=_claimed_subjects(purpose),
                client_id=rejected.client.id,
                procedure=envelope.get("procedure"),
            ),
            code=error.code,
            status=error.http_status,
        )
