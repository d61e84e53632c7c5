"""Records held by a holder (land parcels, documents) go through the same decisions as entities.

Their own identifier (a parcel's, a document's number) is data about the holder: it is
decided like any other field, and never read or counted as served when withheld.
"""

from __future__ import annotations

import datetime
from typing import Any

import httpx

from connectors import FetchContext, ManifestBase, RestConnector, build_registry, parse_manifest
from gateway.errors import PurposeNotAllowed
from policies import (
    AccessRequest,
    ActiveConsent,
    Allowed,
    Basis,
    Purpose,
    default_policy,
    load_catalogue,
)
from schema import (
    Access,
    RequestContext,
    SchemaLimits,
    Services,
    build_schema,
    canonical_fields,
)

HOLDER = "079203001234"


class OnlyArea:
    """Allows the area of a parcel and nothing else."""

    def check(self, request: AccessRequest) -> Allowed:
        if request.path != "LandParcel.areaM2":
            raise PurposeNotAllowed(field=request.path)
        return Allowed("law", "test")


def _manifest() -> ManifestBase:
    return parse_manifest(
        {
            "name": "land",
            "kind": "rest",
            "base_url": "http://land.test",
            "entities": {
                "LandParcel": {
                    "key_field": "so_thua",
                    "lists": {"holder": {"get": "/v1/thua-dat/chu/{key}"}},
                    "fields_param": "truong",
                    "fields": {
                        "parcelId": "so_thua",
                        "areaM2": "dien_tich",
                        "certificateSerial": "so_gcn",
                    },
                }
            },
        }
    )


async def test_a_denied_identifier_of_a_listed_record_is_withheld_and_never_asked() -> None:
    asked: list[str] = []

    def source(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params["truong"])
        return httpx.Response(
            200, json=[{"so_thua": "THUA-1", "dien_tich": 81.5, "so_gcn": "CS-9"}]
        )

    http = httpx.AsyncClient(transport=httpx.MockTransport(source))
    registry = build_registry(
        [_manifest()], http=http, canonical=canonical_fields(), kinds={"rest": RestConnector}
    )
    access = Access(
        client_id="VN/GOV/TEST/x",
        agency_kinds=frozenset(),
        purpose=Purpose("TEST", "HS-1", "officer-1", (HOLDER,)),
        policy=OnlyArea(),
    )
    ctx = RequestContext(
        registry=registry, fetch=FetchContext(request_id="r"), max_batch=5, access=access
    )
    result = await build_schema(SchemaLimits()).execute(
        f'{{ landParcels(holder: "{HOLDER}") {{ parcelId areaM2 certificateSerial }} }}',
        context_value=ctx,
    )
    data: Any = result.data
    assert data == {"landParcels": [{"parcelId": None, "areaM2": 81.5, "certificateSerial": None}]}
    codes = {tuple(e.path or ()): (e.extensions or {}).get("code") for e in result.errors or ()}
    assert codes == {
        ("landParcels", 0, "parcelId"): "PURPOSE_NOT_ALLOWED",
        ("landParcels", 0, "certificateSerial"): "PURPOSE_NOT_ALLOWED",
    }
    assert asked == ["dien_tich"]
    # What the citizen is told was read, and what the figures count: the allowed field.
    assert ctx.served == {HOLDER: {"LandParcel.areaM2"}}


async def test_an_empty_list_is_an_answer_and_a_failed_source_is_not() -> None:
    answers = iter([httpx.Response(200, json=[]), httpx.Response(503)])

    def source(request: httpx.Request) -> httpx.Response:
        return next(answers)

    http = httpx.AsyncClient(transport=httpx.MockTransport(source))
    registry = build_registry(
        [_manifest()], http=http, canonical=canonical_fields(), kinds={"rest": RestConnector}
    )
    schema = build_schema(SchemaLimits())
    served = []
    for _ in range(2):
        access = Access(
            client_id="VN/GOV/TEST/x",
            agency_kinds=frozenset(),
            purpose=Purpose("TEST", "HS-1", "officer-1", (HOLDER,)),
            policy=OnlyArea(),
        )
        ctx = RequestContext(
            registry=registry, fetch=FetchContext(request_id="r"), max_batch=5, access=access
        )
        await schema.execute(
            f'{{ landParcels(holder: "{HOLDER}") {{ areaM2 }} }}', context_value=ctx
        )
        served.append(ctx.served)
    assert served == [{HOLDER: {"LandParcel.areaM2"}}, {}]


SOCIAL_ALLOWANCE = "1.001776"
DISABILITY = "Disability certificate"


def _one_document_per_holder() -> ManifestBase:
    return parse_manifest(
        {
            "name": "documents",
            "kind": "rest",
            "base_url": "http://documents.test",
            "entities": {
                "Document": {
                    "key_field": "so_giay_to",
                    "lists": {"holder": {"get": "/v1/giay-to/{key}", "list_field": "ket_qua"}},
                    "fields_param": "truong",
                    "fields": {
                        "documentId": "so_giay_to",
                        "kind": "loai",
                        "issuer": "noi_cap",
                        "issuedOn": "ngay_cap",
                    },
                }
            },
        }
    )


async def _prefill_with_consent(fields: set[str]) -> tuple[Any, RequestContext, list[str]]:
    """The social allowance's form for HOLDER, whose consent covers `fields` of Document."""
    asked: list[str] = []

    def source(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params["truong"])
        return httpx.Response(
            200,
            json={
                "ket_qua": [
                    {
                        "so_giay_to": "XNKT-0001",
                        "loai": "disability_certificate",
                        "noi_cap": "UBND xã Tân Hòa",
                        "ngay_cap": "2024-03-01",
                    }
                ]
            },
        )

    catalogue = load_catalogue(canonical=canonical_fields())
    consent = ActiveConsent(
        id="consent-1",
        subject=HOLDER,
        consumer="VN/GOV/TEST/x",
        procedure=SOCIAL_ALLOWANCE,
        fields=frozenset(f"Document.{name}" for name in fields),
        valid_until=datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1),
        case="HS-1",
    )

    async def consents() -> list[ActiveConsent]:
        return [consent]

    access = Access(
        client_id="VN/GOV/TEST/x",
        agency_kinds=frozenset({"social_protection"}),
        purpose=Purpose(SOCIAL_ALLOWANCE, "HS-1", "officer-1", (HOLDER,)),
        policy=default_policy(catalogue),
        consent_paths=frozenset(
            path
            for path in catalogue.get(SOCIAL_ALLOWANCE).fields
            if catalogue.basis(SOCIAL_ALLOWANCE, path) == Basis.CONSENT
        ),
        consent_loader=consents,
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(source))
    registry = build_registry(
        [_one_document_per_holder()],
        http=http,
        canonical=canonical_fields(),
        kinds={"rest": RestConnector},
    )
    ctx = RequestContext(
        registry=registry,
        fetch=FetchContext(request_id="r"),
        max_batch=5,
        access=access,
        services=Services(catalogue=catalogue, consents=None, consent_requests=None),  # type: ignore[arg-type]
    )
    result = await build_schema(SchemaLimits()).execute(
        f'{{ prefill(procedure: "{SOCIAL_ALLOWANCE}", applicant: "{HOLDER}") '
        "{ papersAvoided { paper { en } } "
        "papersStillNeeded { paper { en } reasons { path code } } } }",
        context_value=ctx,
    )
    assert result.errors is None, result.errors
    return result.data["prefill"], ctx, asked


def _document_decisions(ctx: RequestContext) -> dict[str, str]:
    return {d.path: d.code for d in ctx.access.decisions if d.path.startswith("Document.")}


async def test_the_identifier_of_a_record_held_by_the_subject_is_decided_like_its_fields() -> None:
    # A source holds one document per holder. The consent covers what kind of
    # certificate the applicant holds, who issued it and when, but not its number: the
    # number is not read, and the paper is still needed.
    form, ctx, asked = await _prefill_with_consent({"kind", "issuer", "issuedOn"})
    avoided = {p["paper"]["en"] for p in form["papersAvoided"]}
    needed = {p["paper"]["en"]: p["reasons"] for p in form["papersStillNeeded"]}
    assert DISABILITY not in avoided
    assert needed[DISABILITY] == [{"path": "Document.documentId", "code": "CONSENT_REQUIRED"}]
    assert ctx.served[HOLDER] >= {"Document.kind", "Document.issuer", "Document.issuedOn"}
    assert "Document.documentId" not in ctx.served[HOLDER]
    assert asked == ["loai,ngay_cap,noi_cap"]
    # The refusal is among the request's decisions, as any other field's.
    assert _document_decisions(ctx) == {
        "Document.documentId": "CONSENT_REQUIRED",
        "Document.kind": "ALLOWED_BY_CONSENT",
        "Document.issuer": "ALLOWED_BY_CONSENT",
        "Document.issuedOn": "ALLOWED_BY_CONSENT",
    }


async def test_an_identifier_of_a_held_record_the_consent_covers_is_read() -> None:
    form, ctx, asked = await _prefill_with_consent({"documentId", "kind", "issuer", "issuedOn"})
    assert DISABILITY in {p["paper"]["en"] for p in form["papersAvoided"]}
    assert ctx.served[HOLDER] >= {
        "Document.documentId",
        "Document.kind",
        "Document.issuer",
        "Document.issuedOn",
    }
    assert asked == ["loai,ngay_cap,noi_cap,so_giay_to"]
    assert set(_document_decisions(ctx).values()) == {"ALLOWED_BY_CONSENT"}
