"""Consent artefacts: requested by a client, answered by the citizen, revocable.

A consent lets one data consumer (a client) read named fields of one citizen for one
procedure, in the case it was asked under, until `validUntil`. Its life: `REQUESTED`
(by a client whose purpose token names the citizen) → `ACTIVE` (approved by the
citizen with a level-2 identity) or `DENIED`, or `EXPIRED` when unanswered past
`answerBy`; an active consent becomes `REVOKED` when the citizen withdraws it, or
`EXPIRED` after `validUntil`.

The grant is signed with the gateway's consent key as a detached JWS over the RFC 8785
canonical JSON of the artefact, which names the case (a grant made before it did
still verifies over the form it signed: `Consent.grant_version`); a revocation is a
separate signed statement. A signed grant alone never proves a consent is still in
force: `status` answers that.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import datetime
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Final

import orjson
import sqlalchemy as sa
from joserfc import jws
from joserfc.jwk import OKPKey
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.errors import AuditUnavailable, Conflict, InvalidArgument, NotFound
from gateway.instants import format_instant, utc_now
from gateway.log import canonical_json
from gateway.records._figures import count_consent
from gateway.records._recorder import Event, insert_events
from gateway.storage import consents
from keys import KeyRing, eddsa_allowed, verifying_registry
from policies import GRANT_VERSION, ActiveConsent, Consent

__all__ = [
    "CONSENT_TYPE",
    "ClientConsentRequests",
    "ConsentStore",
    "OnRequest",
    "Recorder",
    "consent_event",
    "detach",
    "verify_signed",
]

_CONSENT_ID = re.compile(r"[0-9a-f]{32}")
"""A consent id as the store makes them (`uuid4().hex`)."""

CONSENT_TYPE: Final = "gw-consent+jws"


def _effective_status(row: Any, now: datetime.datetime) -> str:
    status: str = row.status
    if status == "REQUESTED" and row.answer_by <= now:
        return "EXPIRED"
    if status == "ACTIVE" and row.valid_until <= now:
        return "EXPIRED"
    return status


def _consent(row: Any, now: datetime.datetime) -> Consent:
    return Consent(
        id=row.id,
        subject=row.subject,
        consumer=row.consumer,
        procedure=row.procedure,
        fields=tuple(row.fields),
        case=row.case,
        status=_effective_status(row, now),
        requested_at=row.requested_at,
        answer_by=row.answer_by,
        valid_until=row.valid_until,
        decided_at=row.decided_at,
        revoked_at=row.revoked_at,
        grant=row.grant,
        revocation=row.revocation,
        grant_version=row.grant_version,
    )


def detach(token: str) -> str:
    """A compact JWS with its payload removed (RFC 7515 Appendix F)."""
    header, _, signature = token.split(".")
    return f"{header}..{signature}"


def _sign(keyring: KeyRing, payload: dict[str, Any]) -> str:
    key = keyring.signing("consent")
    header = {"alg": "EdDSA", "kid": key.kid, "typ": CONSENT_TYPE}
    with eddsa_allowed():
        token = jws.serialize_compact(
            header, canonical_json(payload), OKPKey.import_key(key.private), algorithms=["EdDSA"]
        )
    return detach(str(token))


def verify_signed(keyring: KeyRing, detached: str, payload: dict[str, Any]) -> bool:
    """Whether `detached` is the consent key's signature over `payload`."""
    header_part, _, signature = detached.split(".")
    body = base64.urlsafe_b64encode(canonical_json(payload)).rstrip(b"=").decode()
    header = _json_header(header_part)
    key = keyring.find(str(header.get("kid")))
    if key is None or key.purpose != "consent":
        return False
    try:
        jws.deserialize_compact(
            f"{header_part}.{body}.{signature}",
            OKPKey.import_key(key.public),
            registry=verifying_registry("EdDSA"),
        )
    except Exception:  # any failure of verification is a "no"
        return False
    return True


def _json_header(part: str) -> dict[str, Any]:
    value = orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return value if isinstance(value, dict) else {}


Recorder = Callable[[Consent], Event]
"""Builds the event of a consent action from the consent as it is after the action."""

OnRequest = Callable[[AsyncConnection, Consent], Awaitable[None]]
"""Runs in the transaction that stores a consent request, with the request stored."""


def consent_event(
    consent: Consent,
    action: str,
    *,
    request_id: str,
    policy_version: str,
    actor: str,
    acr: str | None = None,
) -> Event:
    """The `consent` event of one action on a consent (no personal data in its envelope)."""
    return Event(
        type="consent",
        request_id=request_id,
        outcome=action,
        policy_version=policy_version,
        envelope={
            "consent": consent.id,
            "action": action,
            "consumer": consent.consumer,
            "procedure": consent.procedure,
            "fields": list(consent.fields),
            "validUntil": consent.public()["validUntil"],
            "actor": actor,
            "acr": acr,
        },
        personal={"subject": consent.subject, "case": consent.case},
        subjects=[consent.subject],
        consents={consent.id: consent.subject},
        client_id=consent.consumer,
        procedure=consent.procedure,
    )


class ConsentStore:
    """Consents in the gateway's database.

    Every change commits in one transaction with its `consent` event: a change that
    cannot be recorded does not happen (`AuditUnavailable`), and none is recorded that
    did not happen.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        keyring: KeyRing,
        *,
        on_request: OnRequest | None = None,
    ) -> None:
        """`on_request` runs in the transaction storing each request (a notification
        written to the outbox): if it fails, the request is not stored."""
        self._engine = engine
        self._keyring = keyring
        self._on_request = on_request

    async def request(
        self,
        *,
        subject: str,
        consumer: str,
        procedure: str,
        fields: Sequence[str],
        case: str,
        valid_until: datetime.datetime,
        answer_within: datetime.timedelta,
        max_validity: datetime.timedelta,
        record: Recorder,
    ) -> Consent:
        """Record a request; the citizen answers it before `answer_within` passes."""
        now = utc_now()
        if valid_until.tzinfo is None:
            raise InvalidArgument("`validUntil` needs a time zone.", argument="validUntil")
        if not now < valid_until <= now + max_validity:
            raise InvalidArgument(
                f"`validUntil` is in the future and at most {max_validity.days} days away.",
                argument="validUntil",
            )
        consent_id = uuid.uuid4().hex
        async with self._recorded() as conn:
            await conn.execute(
                consents.insert().values(
                    id=consent_id,
                    subject=subject,
                    consumer=consumer,
                    procedure=procedure,
                    fields=sorted(set(fields)),
                    case=case,
                    status="REQUESTED",
                    grant_version=GRANT_VERSION,
                    requested_at=now,
                    answer_by=now + answer_within,
                    valid_until=valid_until,
                )
            )
            consent = await self._read(conn, consent_id)
            event = record(consent)
            await insert_events(conn, [event])
            if self._on_request is not None:
                await self._on_request(conn, consent)
        count_consent(procedure, event.outcome)
        return consent

    @contextlib.asynccontextmanager
    async def _recorded(self) -> AsyncIterator[AsyncConnection]:
        """A transaction whose database failures mean: nothing changed, nothing recorded."""
        try:
            async with self._engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise AuditUnavailable("The change could not be recorded; nothing changed.") from exc

    async def _read(self, conn: AsyncConnection, consent_id: str) -> Consent:
        if not _CONSENT_ID.fullmatch(consent_id):
            # Never sent to the database: a NUL or a lone surrogate is not text it takes.
            raise NotFound("No consent has this id.", kind="Consent")
        row = (await conn.execute(sa.select(consents).where(consents.c.id == consent_id))).first()
        if row is None:
            raise NotFound("No consent has this id.", kind="Consent")
        return _consent(row, utc_now())

    async def get(self, consent_id: str) -> Consent:
        """The consent, or `NotFound`."""
        async with self._engine.connect() as conn:
            return await self._read(conn, consent_id)

    async def of_subject(self, subject: str, *, status: str | None = None) -> list[Consent]:
        """A citizen's consents, newest first, optionally of one (effective) status."""
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(consents)
                    .where(consents.c.subject == subject)
                    .order_by(consents.c.requested_at.desc())
                )
            ).all()
        now = utc_now()
        found = [_consent(r, now) for r in rows]
        return [c for c in found if status is None or c.status == status]

    async def active_for(
        self, *, consumer: str, procedure: str, subjects: Sequence[str]
    ) -> list[ActiveConsent]:
        """Consents in force now for these subjects, this consumer and procedure.

        Each with the case it was asked under, whatever the form its grant signed: a
        consent granted before grants named the case is bound to the case it was
        requested for (stored with it, and shown to the citizen who approved it).
        """
        now = utc_now()
        query = sa.select(
            consents.c.id,
            consents.c.subject,
            consents.c.fields,
            consents.c.valid_until,
            consents.c.case,
        ).where(
            consents.c.consumer == consumer,
            consents.c.procedure == procedure,
            consents.c.subject.in_(list(subjects)),
            consents.c.status == "ACTIVE",
            consents.c.valid_until > now,
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            ActiveConsent(
                r.id,
                r.subject,
                consumer,
                procedure,
                frozenset(r.fields),
                r.valid_until,
                # As `Purpose.case` is: a case stored before purposes were kept in NFC
                # still matches the same case typed now.
                unicodedata.normalize("NFC", r.case),
            )
            for r in rows
        ]

    async def _transition(
        self,
        consent_id: str,
        subject: str,
        *,
        from_status: str,
        values: Callable[[Consent], dict[str, Any]],
        record: Recorder,
    ) -> Consent:
        async with self._recorded() as conn:
            current = await self._read(conn, consent_id)
            if current.subject != subject:
                # Another citizen's consent: as if it did not exist.
                raise NotFound("No consent has this id.", kind="Consent")
            if current.status != from_status:
                raise Conflict(
                    f"The consent is {current.status}; this needs it {from_status}.",
                    status=current.status,
                )
            result = await conn.execute(
                consents.update()
                .where(
                    consents.c.id == consent_id,
                    consents.c.subject == subject,
                    consents.c.status == from_status,
                )
                .values(**values(current))
            )
            if result.rowcount != 1:
                raise Conflict("The consent changed meanwhile; read it again.")
            changed = await self._read(conn, consent_id)
            event = record(changed)
            await insert_events(conn, [event])
        count_consent(changed.procedure, event.outcome)
        return changed

    async def approve(self, consent_id: str, subject: str, *, record: Recorder) -> Consent:
        """The citizen grants: the consent is in force from now, with a signed grant."""
        now = utc_now()

        def granted(current: Consent) -> dict[str, Any]:
            # The current form, naming the case, even for a request made before it.
            artefact = dataclasses.replace(
                current, decided_at=now, status="ACTIVE", grant_version=GRANT_VERSION
            )
            grant = _sign(self._keyring, artefact.artefact())
            return {
                "status": "ACTIVE",
                "decided_at": now,
                "grant": grant,
                "grant_version": GRANT_VERSION,
            }

        return await self._transition(
            consent_id, subject, from_status="REQUESTED", values=granted, record=record
        )

    async def deny(self, consent_id: str, subject: str, *, record: Recorder) -> Consent:
        """The citizen refuses."""
        return await self._transition(
            consent_id,
            subject,
            from_status="REQUESTED",
            values=lambda _: {"status": "DENIED", "decided_at": utc_now()},
            record=record,
        )

    async def revoke(self, consent_id: str, subject: str, *, record: Recorder) -> Consent:
        """The citizen withdraws; a signed revocation is kept beside the grant."""
        now = utc_now()
        revocation = _sign(self._keyring, {"id": consent_id, "revokedAt": format_instant(now)})
        return await self._transition(
            consent_id,
            subject,
            from_status="ACTIVE",
            values=lambda _: {"status": "REVOKED", "revoked_at": now, "revocation": revocation},
            record=record,
        )


class ClientConsentRequests:
    """What a client's GraphQL request may do with consents: ask for one, read one.

    The schema sees this through its `ConsentRequests` protocol; each request is
    recorded as a `consent` event of actor `client`, in the transaction that stores it.
    """

    def __init__(
        self,
        store: ConsentStore,
        *,
        policy_version: str,
        answer_within: datetime.timedelta,
        max_validity: datetime.timedelta,
    ) -> None:
        self._store = store
        self.policy_version = policy_version
        """The catalogue version its records name (it changes with the catalogue)."""
        self._answer_within = answer_within
        self._max_validity = max_validity

    def under(self, policy_version: str) -> ClientConsentRequests:
        """The same requests, their records naming `policy_version` (a request's own)."""
        if policy_version == self.policy_version:
            return self
        other = copy.copy(self)
        other.policy_version = policy_version
        return other

    async def get(self, consent_id: str) -> Consent:
        """The consent, or `NotFound`."""
        return await self._store.get(consent_id)

    async def request(
        self,
        *,
        subject: str,
        consumer: str,
        procedure: str,
        fields: Sequence[str],
        case: str,
        valid_until: datetime.datetime,
        request_id: str,
    ) -> Consent:
        """Record the request; the citizen answers it within the answer period."""
        return await self._store.request(
            subject=subject,
            consumer=consumer,
            procedure=procedure,
            fields=fields,
            case=case,
            valid_until=valid_until,
            answer_within=self._answer_within,
            max_validity=self._max_validity,
            record=lambda consent: consent_event(
                consent,
                "requested",
                request_id=request_id,
                policy_version=self.policy_version,
                actor="client",
            ),
        )
