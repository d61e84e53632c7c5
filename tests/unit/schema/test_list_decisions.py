"""Lists of records by holder (land parcels) go through the same decisions as entities."""

from __future__ import annotations

from typing import Any

import httpx

from connectors import FetchContext, Manifest, RestConnector, build_registry
from gateway.errors import PurposeNotAllowed
from policies import AccessRequest, Allowed, Purpose
from schema import Access, RequestContext, SchemaLimits, build_schema, canonical_fields

HOLDER = "079203001234"


class OnlyArea:
    """Allows the area of a parcel and nothing else."""

    def check(self, request: AccessRequest) -> Allowed:
        if request.path != "LandParcel.areaM2":
            raise PurposeNotAllowed(field=request.path)
        return Allowed("law", "test")


def _manifest() -> Manifest:
    return Manifest.model_validate(
        {
            "name": "land",
            "kind": "rest",
            "base_url": "http://land.test",
            "entities": {
                "LandParcel": {
                    "key_field": "so_thua",
                    "get": "/v1/thua-dat/chu/{key}",
                    "fields_param": "truong",
                    "many": True,
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
