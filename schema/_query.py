"""The root query: thin resolvers over the service functions."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from gateway.errors import InvalidArgument, InvalidIdentifier
from gateway.identifiers import (
    HOLDER_KINDS,
    EnterpriseCode,
    HouseholdId,
    PersonalId,
    parse_identifier,
)
from schema._consent import Consent, consent_status
from schema._context import RequestContext
from schema._prefill import Prefill, prefill_form
from schema._selection import selection
from schema._service import KINDS, EntityKind, get_entities, get_list
from schema._types import Business, Citizen, Document, Household, InsuranceRecord, LandParcel

__all__ = ["Query", "holder_id"]

Ctx = Info[RequestContext, None]


def holder_id(value: str) -> str:
    """A holder is a person (personal id) or an enterprise (tax code)."""
    return parse_identifier(value, HOLDER_KINDS, argument="holder")


async def _one(info: Ctx, kind: EntityKind, key: str) -> Any:
    chosen = selection(info._raw_info)
    [result] = await get_entities(
        ctx=info.context, kind=kind, keys=[key], selection=chosen, paths=[chosen.path]
    )
    return result


async def _list(info: Ctx, kind: EntityKind, holder: str) -> Any:
    chosen = selection(info._raw_info)
    return await get_list(ctx=info.context, kind=kind, holder=holder, selection=chosen)


@strawberry.type(description="Reads of data the state already holds, one case at a time.")
class Query:
    @strawberry.field(description="A citizen by 12-digit personal id.")
    async def citizen(self, info: Ctx, personal_id: str) -> Citizen | None:
        return await _one(info, KINDS["Citizen"], PersonalId(personal_id).value)  # type: ignore[no-any-return]

    @strawberry.field(
        description="Several citizens in one lookup, in the order asked; at most the "
        "gateway's `max_batch` ids. A malformed or unknown id yields null at its position."
    )
    async def citizens(self, info: Ctx, personal_ids: list[str]) -> list[Citizen | None] | None:
        ctx = info.context
        if len(personal_ids) > ctx.max_batch:
            raise InvalidArgument(
                f"At most {ctx.max_batch} personal ids per request.",
                argument="personalIds",
                max=ctx.max_batch,
            )
        parsed: list[PersonalId | InvalidIdentifier] = []
        for value in personal_ids:
            try:
                parsed.append(PersonalId(value))
            except InvalidIdentifier as exc:
                parsed.append(exc)
        chosen = selection(info._raw_info)
        valid = [(i, p.value) for i, p in enumerate(parsed) if isinstance(p, PersonalId)]
        found = iter(
            await get_entities(
                ctx=ctx,
                kind=KINDS["Citizen"],
                keys=[key for _, key in valid],
                selection=chosen,
                paths=[f"{chosen.path}.{i}" for i, _ in valid],
            )
        )
        return [next(found) if isinstance(p, PersonalId) else p for p in parsed]  # type: ignore[misc]

    @strawberry.field(
        description="A household by its id in the population database; the id must be a "
        "subject of the stated case."
    )
    async def household(self, info: Ctx, household_id: str) -> Household | None:
        return await _one(info, KINDS["Household"], HouseholdId(household_id).value)  # type: ignore[no-any-return]

    @strawberry.field(description="An enterprise by enterprise code (tax code).")
    async def business(self, info: Ctx, enterprise_code: str) -> Business | None:
        return await _one(info, KINDS["Business"], EnterpriseCode(enterprise_code).value)  # type: ignore[no-any-return]

    @strawberry.field(description="Land parcels held by a person or an enterprise.")
    async def land_parcels(self, info: Ctx, holder: str) -> list[LandParcel] | None:
        return await _list(info, KINDS["LandParcel"], holder_id(holder))  # type: ignore[no-any-return]

    @strawberry.field(description="Social and health insurance of a citizen.")
    async def insurance(self, info: Ctx, personal_id: str) -> InsuranceRecord | None:
        return await _one(info, KINDS["InsuranceRecord"], PersonalId(personal_id).value)  # type: ignore[no-any-return]

    @strawberry.field(description="Digitized results (certificates, licences) of a holder.")
    async def documents(self, info: Ctx, holder: str) -> list[Document] | None:
        return await _list(info, KINDS["Document"], holder_id(holder))  # type: ignore[no-any-return]

    @strawberry.field(
        description="The procedure's e-form filled from the state's databases for the "
        "applicant: each field with its value, provenance and the papers it replaces; "
        "the papers the applicant no longer brings, and those still needed."
    )
    async def prefill(self, info: Ctx, procedure: str, applicant: str) -> Prefill | None:
        return await prefill_form(
            ctx=info.context,
            procedure=procedure,
            applicant=holder_id(applicant),
            response_path=selection(info._raw_info).path,
        )

    @strawberry.field(description="A consent this client requested, with its status now.")
    async def consent(self, info: Ctx, id: strawberry.ID) -> Consent | None:
        return await consent_status(ctx=info.context, consent_id=str(id))
