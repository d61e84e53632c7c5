"""Case confirmation against a dossier registry: the checks, the subjects, the cache.

The registry is the sandbox's manifest (`dossiers.yaml`) read by the real `rest` kind
over `httpx.MockTransport`; the gateway's own end-to-end tests are in
`tests/integration/test_case_confirmation.py`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import sandbox
from connectors import ConnectorRegistry, FetchContext, RestConnector, load_manifest
from gateway.admission import CaseCheck, Cases, client_organisation, same_procedure
from gateway.errors import CaseNotConfirmed, CaseRegistryUnavailable
from policies import CaseConfirmation, Purpose

A, B, C = "079203001234", "001088004321", "038190000111"
CODE = "000.00.02.H01-251001-0001"
CLIENT = "VN/GOV/TEST/mot-cua"
MANIFEST = Path(sandbox.__file__).parent / "manifests" / "dossiers.yaml"
REQUIRED, OPTIONAL = CaseConfirmation.REQUIRED, CaseConfirmation.OPTIONAL
KEY = b"pseudonym key of the tests"


def dossier(**changes: Any) -> dict[str, Any]:
    record = {
        "ma_ho_so": CODE,
        "ma_thu_tuc": "1.013831",
        "ten_thu_tuc": "Đăng ký biến động",
        "co_quan_tiep_nhan": "VN/GOV/TEST",
        "co_quan_xu_ly": ["VN/GOV/BNNMT"],
        "trang_thai": "DANG_XU_LY",
        "ngay_tiep_nhan": "2026-12-01",
        "ngay_hen_tra": "2026-12-11",
        "nguoi_lien_quan": [
            {"ma_dinh_danh": A, "vai_tro": "NGUOI_NOP"},
            {"ma_dinh_danh": B, "vai_tro": "VO_CHONG_NGUOI_NOP"},
        ],
    }
    return record | changes


class Registry:
    """The dossier registry behind the mock transport: its answers, and its calls."""

    def __init__(self, answer: Any = None, status: int = 200, delay: float = 0.0) -> None:
        self.answer = dossier() if answer is None else answer
        self.status = status
        self.delay = delay
        self.calls = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            return httpx.Response(self.status, json={"ma_loi": "X"})
        return httpx.Response(200, content=orjson.dumps(self.answer))

    def connectors(self) -> ConnectorRegistry:
        manifest = load_manifest(MANIFEST)
        manifest = manifest.model_copy(update={"retries": 0})
        http = httpx.AsyncClient(transport=httpx.MockTransport(self))
        return ConnectorRegistry([(manifest, RestConnector(manifest, http=http))])


async def confirm(
    cases: Cases,
    registry: ConnectorRegistry,
    *,
    requirement: CaseConfirmation = REQUIRED,
    procedure: str = "1.013831",
    subjects: tuple[str, ...] = (A,),
    client: str = CLIENT,
    within: float | None = None,
) -> Any:
    purpose = Purpose(procedure, CODE, "officer-1", subjects)
    deadline = None if within is None else asyncio.get_running_loop().time() + within
    return await cases.confirm(
        requirement,
        purpose=purpose,
        client_id=client,
        registry=registry,
        fetch=FetchContext(request_id="r", client_id=client, purpose=purpose, deadline=deadline),
    )


def test_a_client_is_of_its_organisation() -> None:
    assert client_organisation("VN/GOV/UBND-HN/mot-cua") == "VN/GOV/UBND-HN"


@pytest.mark.parametrize(
    ("dossier_code", "procedure", "same"),
    [
        ("1.004222", "1.004222", True),
        ("1.004222.H26", "1.004222", True),
        ("1.004222", "1.004222.H26", True),
        ("1.004222.H26", "1.004222.H29", False),
        ("1.004223", "1.004222", False),
        ("LOCAL.test", "LOCAL.test", True),
        ("LOCAL.test.H26", "LOCAL.test", False),
        ("", "1.004222", False),
    ],
)
def test_a_provinces_variant_is_the_national_procedure(
    dossier_code: str, procedure: str, same: bool
) -> None:
    assert same_procedure(dossier_code, procedure) is same


async def test_a_confirmed_dossier_keeps_the_subjects_it_names() -> None:
    registry = Registry()
    found = await confirm(Cases(key=KEY), registry.connectors(), subjects=(A, C, B))
    assert found.confirmed
    assert found.error() is None
    assert found.persons == {A, B}
    purpose = Purpose("1.013831", CODE, "o", (A, C, B))
    assert found.purpose(purpose).subjects == (A, B)
    same = Purpose("1.013831", CODE, "o", (B,))
    assert found.purpose(same) is same
    envelope = found.envelope()
    assert envelope["confirmed"] is True
    assert envelope["dossierStatus"] == "IN_PROGRESS"
    assert envelope["registry"] == "dossiers"
    assert len(envelope["answerHmac"]) == 64
    assert A not in orjson.dumps(envelope).decode()  # no person in the envelope
    assert found.answer["persons"][0] == {"identifier": A, "role": "APPLICANT"}
    assert found.answer["status"] == "IN_PROGRESS"


@pytest.mark.parametrize(
    ("answer", "client", "check"),
    [
        (dossier(ma_thu_tuc="1.004222"), CLIENT, CaseCheck.OTHER_PROCEDURE),
        (dossier(), "VN/GOV/UBND-HN/mot-cua", CaseCheck.OTHER_ORGANISATION),
        (dossier(trang_thai="DA_HUY"), CLIENT, CaseCheck.DOSSIER_CLOSED),
        (dossier(trang_thai="TRA_LAI"), CLIENT, CaseCheck.DOSSIER_CLOSED),
        (dossier(trang_thai="DA_TRA_KET_QUA"), CLIENT, CaseCheck.DOSSIER_CLOSED),
    ],
)
async def test_the_first_failed_check_refuses_a_required_case(
    answer: dict[str, Any], client: str, check: CaseCheck
) -> None:
    found = await confirm(Cases(key=KEY), Registry(answer).connectors(), client=client)
    assert found.check is check
    error = found.error()
    assert isinstance(error, CaseNotConfirmed)
    assert error.detail == {"check": check.value}
    # The same dossier, for an optional procedure: read as stated, recorded so.
    optional = await confirm(
        Cases(key=KEY), Registry(answer).connectors(), client=client, requirement=OPTIONAL
    )
    assert optional.check is check
    assert optional.error() is None
    # A dossier that fails a check names no one else either: C is withheld.
    assert optional.purpose(Purpose("1.013831", CODE, "o", (A, C))).subjects == (A,)


async def test_a_dossier_assigned_to_the_organisation_confirms() -> None:
    answer = dossier(co_quan_tiep_nhan="VN/GOV/UBND-HCM", co_quan_xu_ly=["VN/GOV/TEST"])
    assert (await confirm(Cases(key=KEY), Registry(answer).connectors())).confirmed


@pytest.mark.parametrize(
    ("registry", "check"),
    [
        (Registry(status=404), CaseCheck.NO_SUCH_DOSSIER),
        (Registry(status=503), CaseCheck.REGISTRY_UNAVAILABLE),
        (Registry(status=401), CaseCheck.REGISTRY_UNAVAILABLE),
        (Registry(dossier(trang_thai="KHONG_RO")), CaseCheck.REGISTRY_UNAVAILABLE),
        (Registry(dossier(nguoi_lien_quan="A")), CaseCheck.REGISTRY_UNAVAILABLE),
        (Registry(dossier(ma_thu_tuc=None)), CaseCheck.REGISTRY_UNAVAILABLE),
        (Registry(dossier(ngay_tiep_nhan="not-a-date")), CaseCheck.REGISTRY_UNAVAILABLE),
        (
            Registry(dossier(nguoi_lien_quan=[{"ma_dinh_danh": A, "vai_tro": {}}])),
            CaseCheck.REGISTRY_UNAVAILABLE,
        ),
        (Registry(dossier(co_quan_xu_ly="VN/GOV/TEST")), CaseCheck.REGISTRY_UNAVAILABLE),
    ],
)
async def test_no_dossier_and_no_answer_are_told_apart(
    registry: Registry, check: CaseCheck
) -> None:
    found = await confirm(Cases(key=KEY), registry.connectors())
    assert found.check is check
    error = found.error()
    expected = CaseNotConfirmed if check.about_dossier else CaseRegistryUnavailable
    assert isinstance(error, expected)
    assert found.answer is None
    assert found.answer_hash is None


async def test_without_a_registry_a_required_case_fails_closed() -> None:
    found = await confirm(Cases(key=KEY), ConnectorRegistry([]))
    assert found.check is CaseCheck.NO_REGISTRY
    assert isinstance(found.error(), CaseRegistryUnavailable)
    assert (
        await confirm(Cases(key=KEY), ConnectorRegistry([]), requirement=OPTIONAL)
    ).error() is None
    none = await Cases(key=KEY).confirm(
        CaseConfirmation.NONE,
        purpose=Purpose("1.000894", CODE, "o", (A,)),
        client_id=CLIENT,
        registry=ConnectorRegistry([]),
        fetch=FetchContext(request_id="r"),
    )
    assert none is None


async def test_a_found_dossier_is_kept_for_its_time_and_no_longer() -> None:
    now = [0.0]
    cases = Cases(key=KEY, ttl=30, clock=lambda: now[0])
    registry = Registry()
    connectors = registry.connectors()
    assert (await confirm(cases, connectors)).confirmed
    registry.answer = dossier(trang_thai="DA_HUY")
    now[0] = 29.0
    assert (await confirm(cases, connectors)).confirmed  # kept: closed at most 30 s late
    assert registry.calls == 1
    now[0] = 30.5
    assert (await confirm(cases, connectors)).check is CaseCheck.DOSSIER_CLOSED
    assert registry.calls == 2
    # Another registry (a new version of the connector) keeps nothing of the old one's.
    registry.answer = dossier()
    assert (await confirm(cases, registry.connectors())).confirmed
    assert registry.calls == 3


async def test_not_found_and_failures_are_not_kept() -> None:
    cases = Cases(key=KEY, ttl=30)
    registry = Registry(status=404)
    connectors = registry.connectors()
    assert (await confirm(cases, connectors)).check is CaseCheck.NO_SUCH_DOSSIER
    registry.status = 503
    assert (await confirm(cases, connectors)).check is CaseCheck.REGISTRY_UNAVAILABLE
    registry.status = 200  # received at the desk meanwhile
    assert (await confirm(cases, connectors)).confirmed
    assert registry.calls == 3


async def test_requests_of_one_case_at_once_share_one_lookup() -> None:
    registry = Registry(delay=0.05)
    cases = Cases(key=KEY, ttl=0)  # nothing kept: only the lookup under way is shared
    connectors = registry.connectors()
    found = await asyncio.gather(*(confirm(cases, connectors) for _ in range(5)))
    assert all(f.confirmed for f in found)
    assert registry.calls == 1 == cases.lookups
    # A request cancelled (its deadline) cancels the lookup for no other.
    first = asyncio.ensure_future(confirm(cases, connectors))
    second = asyncio.ensure_future(confirm(cases, connectors))
    await asyncio.sleep(0.01)
    first.cancel()
    assert (await second).confirmed
    assert registry.calls == 2


async def test_a_lookup_ends_by_the_requests_deadline() -> None:
    registry = Registry(delay=5.0)
    started = asyncio.get_running_loop().time()
    found = await confirm(Cases(key=KEY), registry.connectors(), within=0.2)
    assert found.check is CaseCheck.REGISTRY_UNAVAILABLE
    assert isinstance(found.error(), CaseRegistryUnavailable)
    assert asyncio.get_running_loop().time() - started < 1.0  # the manifest's timeout is 1 s


async def test_clients_share_no_lookup() -> None:
    # A lookup goes out in the name of its request: another client's waits for its own.
    registry = Registry(delay=0.05)
    cases = Cases(key=KEY, ttl=30)
    connectors = registry.connectors()
    other = "VN/GOV/UBND-HN/mot-cua"
    mine, theirs = await asyncio.gather(
        confirm(cases, connectors), confirm(cases, connectors, client=other)
    )
    assert mine.confirmed
    assert theirs.check is CaseCheck.OTHER_ORGANISATION
    assert registry.calls == 2


async def test_a_registry_that_serves_part_of_the_checks_is_none() -> None:
    manifest = load_manifest(MANIFEST)
    entity = manifest.entities["Dossier"]
    fields = {k: v for k, v in entity.fields.items() if k != "persons"}
    partial = manifest.model_copy(
        update={"entities": {"Dossier": entity.model_copy(update={"fields": fields})}}
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(Registry()))
    registry = ConnectorRegistry([(partial, RestConnector(partial, http=http))])
    assert (await confirm(Cases(key=KEY), registry)).check is CaseCheck.NO_REGISTRY


async def test_the_digest_of_the_answer_is_keyed() -> None:
    one = await confirm(Cases(key=KEY), Registry().connectors())
    two = await confirm(Cases(key=b"another key"), Registry().connectors())
    assert one.answer == two.answer
    assert one.answer_hash != two.answer_hash
