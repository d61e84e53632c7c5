"""What a citizen sees of an access: the officer by name or role, forgotten records."""

from __future__ import annotations

import datetime
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from gateway.records._citizen_view import _item, _officer, _System
from policies import AGENCY_KIND_LABELS, AgencyKind, Catalogue, Procedure, load_catalogue

RESIDENCE = "1.004222"  # commune police
ALLOWANCE = "1.001776"  # commune people's committee, social protection
AN, BINH = "079203001234", "001185000777"
OFFICER = "Nguyễn Văn An"
GENERIC = {"role": {"vi": "Cán bộ", "en": "Officer"}}


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def _named(catalogue: Catalogue, code: str) -> Procedure:
    return catalogue.get(code).model_copy(update={"officer_disclosure": "name"})


def _role(kind: AgencyKind) -> dict[str, Any]:
    vi, en = AGENCY_KIND_LABELS[kind]
    return {"role": {"vi": f"Cán bộ {vi}", "en": f"Officer of the {en}"}}


POLICE = _System("Residence system", ("commune_police",))


# -- the officer ------------------------------------------------------------------------


def test_a_procedure_that_discloses_names_shows_the_officer_by_name(catalogue: Catalogue) -> None:
    assert _officer(_named(catalogue, RESIDENCE), OFFICER, POLICE) == {"name": OFFICER}


def test_the_shipped_procedures_show_roles_not_names(catalogue: Catalogue) -> None:
    entry = catalogue.get(RESIDENCE)
    assert entry.officer_disclosure == "role"
    assert _officer(entry, OFFICER, POLICE) == {
        "role": {
            "vi": "Cán bộ Công an cấp xã",
            "en": "Officer of the Commune-level police (residence registration)",
        }
    }


@pytest.mark.parametrize("officer", [None, ""])
def test_a_name_that_was_not_recorded_falls_back_to_the_role(
    catalogue: Catalogue, officer: str | None
) -> None:
    assert _officer(_named(catalogue, RESIDENCE), officer, POLICE) == _role(
        AgencyKind.COMMUNE_POLICE
    )


def test_the_role_is_the_systems_kind_that_runs_the_procedure(catalogue: Catalogue) -> None:
    system = _System("Tax and allowances", ("tax_authority", "social_protection"))
    entry = catalogue.get(ALLOWANCE)
    assert _officer(entry, OFFICER, system) == _role(AgencyKind.SOCIAL_PROTECTION)


def test_a_system_of_another_kind_is_shown_by_its_own_first_kind(catalogue: Catalogue) -> None:
    system = _System("Tax", ("tax_authority", "education"))
    assert _officer(catalogue.get(ALLOWANCE), OFFICER, system) == _role(AgencyKind.TAX_AUTHORITY)


UNKNOWN = {"role": {"vi": "Không rõ", "en": "Unknown"}}


def test_without_a_procedure_the_officer_is_unknown_not_guessed_from_the_system() -> None:
    system = _System("Mixed", ("ministry_of_magic", "education", "health"))
    assert _officer(None, OFFICER, system) == UNKNOWN


def test_without_a_procedure_a_name_is_never_shown() -> None:
    assert _officer(None, OFFICER, None) == UNKNOWN


@pytest.mark.parametrize("system", [None, _System("Unknown", ()), _System("Odd", ("guild",))])
def test_without_a_known_kind_the_officer_is_just_an_officer(
    catalogue: Catalogue, system: _System | None
) -> None:
    assert _officer(catalogue.get(RESIDENCE), OFFICER, system) == GENERIC


# -- the item ---------------------------------------------------------------------------


def _row(**changes: Any) -> SimpleNamespace:
    envelope = {
        "organisation": "Commune Police of Ba Dinh",
        "decisions": [
            {"path": "Citizen.fullName", "subjects": [0, 1], "decision": "ALLOWED_BY_LAW",
             "basis": "Law 26/2023 Art. 9"},
            {"path": "Citizen.phone", "subjects": [0], "decision": "ALLOWED_BY_CONSENT",
             "basis": "c-17"},
            {"path": "Citizen.phone", "subjects": [1], "decision": "CONSENT_REQUIRED"},
            {"path": "Citizen.father", "subjects": [1], "decision": "ALLOWED_BY_LAW",
             "basis": "Law 26/2023 Art. 9"},
        ],
    }  # fmt: skip
    values = {
        "id": "e" * 32,
        "ts": datetime.datetime(2026, 1, 31, 1, 2, 3),  # naive, as SQLite returns it
        "type": "access",
        "organisation": "Commune Police of Ba Dinh",
        "envelope": orjson.dumps(envelope).decode(),
        "outcome": "served",
        "leaf_index": 41,
        "client_id": "VN/GOV/CA-HN/cu-tru",
        "procedure": RESIDENCE,
        **changes,
    }
    return SimpleNamespace(**values)


PERSONAL = {"subjects": [AN, BINH], "officer": OFFICER, "case": "HS-2026/15"}


def test_a_forgotten_record_shows_only_its_envelope(catalogue: Catalogue) -> None:
    item = _item(_row(), None, AN, catalogue, POLICE)
    assert item == {
        "id": "e" * 32,
        "time": "2026-01-31T01:02:03Z",
        "kind": "access",
        "organisation": "Commune Police of Ba Dinh",
        "system": {"id": "VN/GOV/CA-HN/cu-tru", "name": "Residence system"},
        "officer": None,
        "procedure": {
            "code": RESIDENCE,
            "name": {
                "vi": catalogue.get(RESIDENCE).name.vi,
                "en": "Permanent residence registration",
            },
        },
        "case": None,
        "fields": [],
        "unanswered": [],
        "withheld": [],
        "basis": [],
        "outcome": "served",
        "inLog": True,
        "receipt": f"/me/accesses/{'e' * 32}/receipt",
        "details": "removed",
    }


def test_a_citizen_sees_only_the_fields_read_about_them(catalogue: Catalogue) -> None:
    item = _item(_row(), PERSONAL, BINH, catalogue, POLICE)
    assert "details" not in item
    assert item["case"] == "HS-2026/15"
    assert item["officer"] == _role(AgencyKind.COMMUNE_POLICE)
    assert item["fields"] == ["Citizen.father", "Citizen.fullName"]
    assert item["withheld"] == [{"field": "Citizen.phone", "code": "CONSENT_REQUIRED"}]
    assert item["basis"] == [{"kind": "law", "legalBasis": "Law 26/2023 Art. 9"}]

    mine = _item(_row(), PERSONAL, AN, catalogue, POLICE)
    assert mine["fields"] == ["Citizen.fullName", "Citizen.phone"]
    assert mine["withheld"] == []
    assert mine["basis"] == [
        {"kind": "law", "legalBasis": "Law 26/2023 Art. 9"},
        {"kind": "consent", "consentId": "c-17"},
    ]


def test_a_record_that_does_not_name_the_citizen_shows_no_fields(catalogue: Catalogue) -> None:
    item = _item(_row(), PERSONAL, "001099012345", catalogue, POLICE)
    assert (item["fields"], item["withheld"], item["basis"]) == ([], [], [])


def test_an_unknown_procedure_is_shown_by_its_code_and_the_officer_as_unknown(
    catalogue: Catalogue,
) -> None:
    item = _item(_row(procedure="9.999999", leaf_index=None), PERSONAL, AN, catalogue, None)
    assert item["procedure"] == {"code": "9.999999", "name": None}
    assert item["officer"] == UNKNOWN
    assert item["system"] is None
    assert item["inLog"] is False


def test_an_auditors_search_shows_the_auditor_and_no_details(catalogue: Catalogue) -> None:
    row = _row(
        type="auditor_search",
        organisation=None,
        envelope=orjson.dumps({"auditorOrg": "VN/GOV/TTCP"}).decode(),
        procedure=None,
    )
    item = _item(row, {"auditor": "auditor-1", "subject": AN}, AN, catalogue, None)
    assert item["kind"] == "audit"
    assert item["organisation"] == "Thanh tra Chính phủ"
    assert item["officer"] == {
        "role": {"vi": "Kiểm tra viên nhật ký truy cập", "en": "Access-log auditor"}
    }
    assert item["basis"] == [{"kind": "audit"}]
    assert "auditor-1" not in orjson.dumps(item).decode()


def test_an_auditor_of_a_body_without_a_known_name_is_shown_by_its_code(
    catalogue: Catalogue,
) -> None:
    row = _row(
        type="auditor_search",
        organisation=None,
        envelope=orjson.dumps({"auditorOrg": "VN/GOV/XYZ"}).decode(),
        procedure=None,
    )
    item = _item(row, {"auditor": "auditor-1", "subject": AN}, AN, catalogue, None)
    assert item["organisation"] == "VN/GOV/XYZ"


def test_only_fields_a_source_answered_are_read(catalogue: Catalogue) -> None:
    # The phone was allowed by consent, but its source did not answer (NO_SOURCE).
    served = {AN: ["Citizen.fullName"], BINH: ["Citizen.father", "Citizen.fullName"]}
    item = _item(_row(), {**PERSONAL, "served": served}, AN, catalogue, POLICE)
    assert item["fields"] == ["Citizen.fullName"]
    assert item["unanswered"] == ["Citizen.phone"]
    assert item["basis"] == [{"kind": "law", "legalBasis": "Law 26/2023 Art. 9"}]


def test_nothing_is_read_when_no_source_answered(catalogue: Catalogue) -> None:
    item = _item(_row(outcome="no_data"), {**PERSONAL, "served": {}}, BINH, catalogue, POLICE)
    assert item["fields"] == []
    assert item["unanswered"] == ["Citizen.father", "Citizen.fullName"]
    assert item["basis"] == []
    assert item["withheld"] == [{"field": "Citizen.phone", "code": "CONSENT_REQUIRED"}]


# -- the sources' evidence --------------------------------------------------------------

HASH = "z4PhNX7vuL3xVChQ1m2AB8Yg5ZTzrqQrBkmQwcRbxAm8nDR0xJqS6QZyZZmH3zRuxUzQjKEBb5NtQ6FUQ3Xh1A=="


def test_the_citizen_sees_which_sources_gave_evidence_not_the_hashes(
    catalogue: Catalogue,
) -> None:
    personal = {
        **PERSONAL,
        "evidence": {
            "insurance": {"xroadRequestHashes": [HASH, HASH]},
            "civil-status": {"xroadRequestHashes": [], "omitted": {"xroadRequestHashes": 3}},
        },
    }
    item = _item(_row(), personal, AN, catalogue, POLICE)
    assert item["sourceEvidence"] == ["civil-status", "insurance"]
    assert HASH not in str(item)


def test_a_record_without_evidence_reads_as_it_did(catalogue: Catalogue) -> None:
    item = _item(_row(), PERSONAL, AN, catalogue, POLICE)
    assert "sourceEvidence" not in item
