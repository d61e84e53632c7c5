"""The catalogue shipped in `policies/catalogue/`: it loads, and says what the brief says."""

import itertools
from pathlib import Path

import pytest
import yaml

import schema
from policies import (
    CATALOGUE_DIR,
    SENSITIVE_FIELDS,
    Basis,
    Catalogue,
    FieldRule,
    Procedure,
    load_catalogue,
)

# The procedures of domain/vietnam.md §5 and the status of their codes.
EXPECTED = {
    "1.001193": "confirmed",  # birth registration
    "1.004222": "confirmed",  # permanent residence
    "1.004194": "confirmed",  # temporary residence
    "1.000894": "confirmed",  # marriage registration
    "1.000656": "confirmed",  # death registration
    "LOCAL.judicial-record-certificate": "provisional",
    "1.001612": "unconfirmed",  # household business
    "1.013831": "unconfirmed",  # land transfer registration
    "1.001776": "unconfirmed",  # social allowance
    "LOCAL.health-card-under-6": "provisional",
    "3.000182": "unconfirmed",  # grade-6 enrolment
    "1.013225": "unconfirmed",  # building permit, house
}

FILES = sorted(p for p in CATALOGUE_DIR.iterdir() if p.suffix in {".yaml", ".yml", ".json"})


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(canonical=schema.canonical_fields())


def test_loads_with_every_path_in_the_canonical_schema(catalogue: Catalogue) -> None:
    assert len(catalogue) >= 12
    assert len(catalogue) == len(FILES)


@pytest.mark.parametrize(("code", "status"), EXPECTED.items())
def test_procedures_of_the_brief_are_there_with_their_code_status(
    catalogue: Catalogue, code: str, status: str
) -> None:
    assert catalogue.get(code).code_status == status


def _paths(procedure: Procedure) -> list[str]:
    paths = list(procedure.fields)
    paths += [path for paper in procedure.papers_replaced for path in paper.fields]
    return paths + [item.path for item in procedure.form]


@pytest.mark.parametrize("code", EXPECTED)
def test_every_path_exists_in_the_canonical_tree(catalogue: Catalogue, code: str) -> None:
    canonical = schema.canonical_fields()
    for path in _paths(catalogue.get(code)):
        kind, *parts = path.split(".")
        tree = canonical[kind]
        for part in parts:
            assert tree is not None, path
            assert part in tree, path
            tree = tree[part]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_file_opens_with_a_comment_naming_the_procedure(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# ")
    opening = " ".join(
        line.removeprefix("#").strip() for line in itertools.takewhile(_comment, lines)
    )
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["name"]["vi"] in opening


def _comment(line: str) -> bool:
    return line.startswith("#")


def test_every_entry_prefills_a_form_and_replaces_papers(catalogue: Catalogue) -> None:
    for procedure in catalogue:
        assert 4 <= len(procedure.form) <= 10, procedure.code
        assert procedure.papers_replaced, procedure.code
        assert procedure.legal_basis, procedure.code


def test_unsure_articles_are_left_out_and_said_so(catalogue: Catalogue) -> None:
    for procedure in catalogue:
        for basis in procedure.legal_basis:
            if basis.article is None:
                assert basis.note is not None
                assert "unconfirmed" in basis.note, (procedure.code, basis.document)


def test_no_shipped_procedure_reuses_a_consent_across_cases(catalogue: Catalogue) -> None:
    """A consent is for the case it was asked under: no procedure says otherwise today."""
    assert [p.code for p in catalogue if p.consents_reusable_across_cases] == []


def test_sensitive_fields_by_law_cite_the_law(catalogue: Catalogue) -> None:
    cited = 0
    for procedure in catalogue:
        for path in SENSITIVE_FIELDS & set(procedure.fields):
            rule = procedure.fields[path]
            assert rule is not Basis.LAW, (procedure.code, path)
            if isinstance(rule, FieldRule):
                assert rule.citation
                cited += 1
    assert cited >= 1


def test_birth_registration_reads_the_parents_ethnicity_by_law_with_its_citation(
    catalogue: Catalogue,
) -> None:
    rule = catalogue.get("1.001193").fields["Citizen.ethnicity"]
    assert isinstance(rule, FieldRule)
    assert rule.basis is Basis.LAW
    assert "60/2014/QH13" in rule.citation


def test_contact_details_are_never_read_by_law(catalogue: Catalogue) -> None:
    for procedure in catalogue:
        for path in ("Citizen.phone", "Citizen.email"):
            assert procedure.basis(path) in (None, Basis.CONSENT), (procedure.code, path)


# Papers that no longer exist, each with the provision that ended it. No procedure can
# ask for them today, so listing one among the papers a procedure replaces would count
# a paper nobody brings any more as a paper avoided.
ABOLISHED_PAPERS = (
    (
        "sổ hộ khẩu",
        "household registration book",
        "Law on Residence No. 68/2020/QH14 Art. 38(3): valid until 31 December 2022",
    ),
    (
        "sổ tạm trú",
        "temporary residence book",
        "Law on Residence No. 68/2020/QH14 Art. 38(3): valid until 31 December 2022",
    ),
    (
        "chứng minh nhân dân",
        "people's identity card",
        "Law on Identification No. 26/2023/QH15 Art. 46 (clause unconfirmed): valid until "
        "31 December 2024",
    ),
)

# What a procedure asks for today to prove residence (form CT07), which a read of the
# Population Database replaces.
RESIDENCE_CONFIRMATION = "Giấy xác nhận thông tin về cư trú"


@pytest.mark.parametrize(
    ("vi", "en", "law"), ABOLISHED_PAPERS, ids=[p[1] for p in ABOLISHED_PAPERS]
)
def test_no_procedure_replaces_an_abolished_paper(
    catalogue: Catalogue, vi: str, en: str, law: str
) -> None:
    listing = [
        (procedure.code, paper.paper.vi)
        for procedure in catalogue
        for paper in procedure.papers_replaced
        if vi in paper.paper.vi.casefold() or en in paper.paper.en.casefold()
    ]
    assert listing == [], f"abolished by {law}"


@pytest.mark.parametrize("code", ["LOCAL.judicial-record-certificate", "1.001612", "1.001776"])
def test_the_residence_confirmation_is_replaced_by_residence_data(
    catalogue: Catalogue, code: str
) -> None:
    procedure = catalogue.get(code)
    (paper,) = [p for p in procedure.papers_replaced if p.paper.vi == RESIDENCE_CONFIRMATION]
    assert "Citizen.permanentResidence" in paper.fields
    assert procedure.basis("Citizen.permanentResidence") is Basis.LAW


def test_residence_registration_reads_the_residence_it_no_longer_asks_a_paper_for(
    catalogue: Catalogue,
) -> None:
    procedure = catalogue.get("1.004222")
    for path in ("Citizen.permanentResidence", "Citizen.household", "Citizen.relationToHead"):
        assert procedure.basis(path) is Basis.LAW, path
    assert [p.paper.en for p in procedure.papers_replaced] == [
        "Identity card",
        "Proof of lawful dwelling (land-use certificate)",
    ]


def test_household_business_cites_the_enterprise_registration_decree_in_force(
    catalogue: Catalogue,
) -> None:
    # Decree 01/2021/ND-CP was replaced by Decree 168/2025/ND-CP from 1 July 2025, as
    # reported by secondary sources; the official text was not at hand, so the entry
    # says the citation is unconfirmed.
    documents = [b.document for b in catalogue.get("1.001612").legal_basis]
    assert not any("01/2021" in d for d in documents), documents
    (decree,) = [b for b in catalogue.get("1.001612").legal_basis if "168/2025" in b.document]
    assert decree.document.startswith("Decree No. 168/2025/ND-CP")
    assert decree.note is not None
    assert "01/2021/ND-CP" in decree.note
    assert "1 July 2025" in decree.note
    assert "unconfirmed" in decree.note
