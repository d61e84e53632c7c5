"""Consent in GraphQL, for clients: request a citizen's consent, read its status.

A client may ask for consent only under a purpose token that names the citizen, for
the token's own procedure, for fields that procedure reads on the basis of consent,
and within a rate limit. The citizen answers through the citizen API (`/me/...`).
"""

from __future__ import annotations

import datetime
from enum import Enum

import strawberry
from strawberry.types import Info

from gateway.errors import (
    ClientNotAuthorised,
    InvalidArgument,
    NotFound,
    PurposeNotAllowed,
    SubjectNotInCase,
)
from gateway.identifiers import PersonalId
from policies import Basis
from policies import Consent as ConsentArtefact
from schema._context import RequestContext, Services

__all__ = ["Consent", "ConsentStatus", "Mutation", "consent_status"]


@strawberry.enum(description="Where a consent is in its life.")
class ConsentStatus(Enum):
    REQUESTED = "REQUESTED"
    ACTIVE = "ACTIVE"
    DENIED = "DENIED"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"


@strawberry.type(description="A citizen's consent to one client, for one procedure.")
class Consent:
    id: strawberry.ID
    status: ConsentStatus
    procedure: str
    fields: list[str]
    case: str
    requested_at: datetime.datetime
    answer_by: datetime.datetime
    valid_from: datetime.datetime | None
    valid_until: datetime.datetime
    revoked_at: datetime.datetime | None


def _typed(consent: ConsentArtefact) -> Consent:
    return Consent(
        id=strawberry.ID(consent.id),
        status=ConsentStatus(consent.status),
        procedure=consent.procedure,
        fields=list(consent.fields),
        case=consent.case,
        requested_at=consent.requested_at,
        answer_by=consent.answer_by,
        valid_from=consent.valid_from,
        valid_until=consent.valid_until,
        revoked_at=consent.revoked_at,
    )


def _services(ctx: RequestContext) -> Services:
    if ctx.services is None:
        raise RuntimeError("consent operations need the gateway's services")
    return ctx.services


async def consent_status(*, ctx: RequestContext, consent_id: str) -> Consent:
    """A consent the calling client requested; any other is as if it did not exist."""
    consent = await _services(ctx).consents.get(consent_id)
    if consent.consumer != ctx.access.client_id:
        raise NotFound("No consent has this id.", kind="Consent")
    return _typed(consent)


async def request_consent(
    *,
    ctx: RequestContext,
    subject: str,
    procedure: str,
    fields: list[str],
    valid_until: datetime.datetime,
) -> Consent:
    """Ask `subject` to let this client read `fields` for `procedure`."""
    services = _services(ctx)
    access = ctx.access
    subject = PersonalId(subject).value
    entry = services.catalogue.get(procedure)
    if not {str(k) for k in entry.agency_kinds} & access.agency_kinds:
        raise ClientNotAuthorised(procedure=procedure)
    if subject not in access.purpose.subjects:
        raise SubjectNotInCase
    if procedure != access.purpose.procedure:
        raise PurposeNotAllowed("Ask for consent for the procedure the token states.")
    if not fields:
        raise InvalidArgument("Name at least one field.", argument="fields")
    for path in fields:
        if entry.basis(path) is None or "." not in path or path.count(".") != 1:
            raise PurposeNotAllowed(field=path, procedure=procedure)
        if entry.basis(path) != Basis.CONSENT:
            raise InvalidArgument(
                "This field is read by law for this procedure; no consent is needed.",
                field=path,
            )
    await services.consent_requests.check(access.client_id)
    consent = await services.consents.request(
        subject=subject,
        consumer=access.client_id,
        procedure=procedure,
        fields=fields,
        case=access.purpose.case,
        valid_until=valid_until,
        request_id=ctx.request_id,
    )
    ctx.actions.append(
        {"consent": consent.id, "action": "requested", "fields": sorted(fields), "subject": subject}
    )
    return _typed(consent)


@strawberry.type(description="Changes a client may ask for.")
class Mutation:
    @strawberry.mutation(
        description="Ask the citizen for consent to read fields the stated procedure reads "
        "only with consent. The citizen must be a subject of the token's purpose."
    )
    async def request_consent(
        self,
        info: Info[RequestContext, None],
        subject: str,
        procedure: str,
        fields: list[str],
        valid_until: datetime.datetime,
    ) -> Consent | None:
        return await request_consent(
            ctx=info.context,
            subject=subject,
            procedure=procedure,
            fields=fields,
            valid_until=valid_until,
        )
