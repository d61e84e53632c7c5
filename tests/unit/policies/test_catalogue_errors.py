"""A catalogue that is wrong stops start-up naming its file and the offending line."""

from pathlib import Path
from textwrap import dedent

import orjson
import pytest
import yaml

import schema
from policies import Basis, CatalogueError, FieldRule, load_catalogue

VALID = dedent(
    """\
    # Test procedure.
    x-residence: &residence [Citizen.permanentResidence]
    code: "1.000001"
    code_status: confirmed
    name: {vi: Thủ tục thử, en: Test procedure}
    agency_kinds:
      - commune_police
    legal_basis:
      - document: Law on Residence No. 68/2020/QH14
        note: (article unconfirmed)
    online_level: full
    fields:
      Citizen.fullName: law
      Citizen.permanentResidence: law
      Citizen.phone: consent
    papers_replaced:
      - paper: {vi: Giấy xác nhận thông tin về cư trú, en: Confirmation of residence information}
        fields: *residence
    form:
      - name: full_name
        label: {vi: Họ và tên, en: Full name}
        path: Citizen.fullName
      - name: ward
        label: {vi: Xã, en: Commune}
        path: Citizen.permanentResidence.wardName
    """
)


def _write(directory: Path, text: str, name: str = "procedure.yaml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def _edit(old: str, new: str) -> str:
    assert VALID.count(old) == 1, old
    return VALID.replace(old, new)


def _line(text: str, marker: str) -> int:
    """The 1-based line of the only line of `text` that contains `marker`."""
    (number,) = [i for i, line in enumerate(text.splitlines(), 1) if marker in line]
    return number


def _error(directory: Path, *, canonical: bool = False) -> CatalogueError:
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(directory, canonical=schema.canonical_fields() if canonical else None)
    return caught.value


def test_the_valid_document_loads_with_its_anchor_and_without_its_x_key(tmp_path: Path) -> None:
    _write(tmp_path, VALID)
    procedure = load_catalogue(tmp_path, canonical=schema.canonical_fields()).get("1.000001")
    assert procedure.papers_replaced[0].fields == ("Citizen.permanentResidence",)
    assert procedure.fields["Citizen.phone"] is Basis.CONSENT
    assert (procedure.hidden_access_allowed, procedure.officer_disclosure) == (False, "role")
    assert procedure.retention_days is None


def test_consents_are_bound_to_their_case_unless_the_procedure_says_otherwise(
    tmp_path: Path,
) -> None:
    _write(tmp_path, VALID)
    assert load_catalogue(tmp_path).get("1.000001").consents_reusable_across_cases is False
    _write(tmp_path, VALID + "consents_reusable_across_cases: true\n")
    assert load_catalogue(tmp_path).get("1.000001").consents_reusable_across_cases is True


# (case id, text replaced, replacement, marker of the line the error must name, words
# the message must contain). Each breaks the valid document in one place.
CASES = [
    (
        "unknown-key",
        "online_level: full\n",
        "online_level: full\ncolour: blue\n",
        "colour: blue",
        "colour",
    ),
    (
        "unknown-agency-kind",
        "  - commune_police\n",
        "  - commune_police\n  - district_peoples_committee\n",
        "district_peoples_committee",
        "agency_kinds.1",
    ),
    (
        "agency-kind-twice",
        "  - commune_police\n",
        "  - commune_police\n  - commune_police # again\n",
        "# again",
        "listed twice",
    ),
    ("bad-code-format", 'code: "1.000001"', 'code: "1.00001"', "code:", "d.dddddd"),
    ("code-read-as-a-number", 'code: "1.000001"', "code: 1.000001", "code:", "quotes"),
    ("province-suffix-lowercase", 'code: "1.000001"', 'code: "1.000001.h19"', "code:", "code"),
    (
        "local-code-marked-confirmed",
        'code: "1.000001"',
        "code: LOCAL.test-procedure",
        "code_status:",
        "provisional, not confirmed",
    ),
    (
        "local-code-marked-unconfirmed",
        'code: "1.000001"\ncode_status: confirmed',
        "code: LOCAL.test-procedure\ncode_status: unconfirmed",
        "code_status:",
        "provisional, not unconfirmed",
    ),
    (
        "national-code-marked-provisional",
        "code_status: confirmed",
        "code_status: provisional",
        "code_status:",
        "only LOCAL.* codes are provisional",
    ),
    (
        "bad-local-slug",
        'code: "1.000001"\ncode_status: confirmed',
        "code: LOCAL.Test_Procedure\ncode_status: provisional",
        "code:",
        "LOCAL.<slug>",
    ),
    (
        "sensitive-field-by-plain-law",
        "  Citizen.phone: consent\n",
        "  Citizen.phone: consent\n  Citizen.ethnicity: law\n",
        "Citizen.ethnicity",
        "sensitive data (Decree 13/2023/ND-CP Art. 2(4))",
    ),
    (
        "sensitive-field-with-blank-citation",
        "  Citizen.phone: consent\n",
        "  Citizen.phone: consent\n  Citizen.religion: {basis: law, citation: ' '}\n",
        "Citizen.religion",
        "fields.Citizen.religion.citation",
    ),
    (
        "rule-without-citation",
        "  Citizen.phone: consent\n",
        "  Citizen.phone: consent\n  Citizen.email:\n    basis: consent\n",
        "Citizen.email:",
        "citation",
    ),
    (
        "unknown-basis",
        "Citizen.phone: consent",
        "Citizen.phone: maybe",
        "Citizen.phone",
        "'law' or 'consent'",
    ),
    (
        "field-key-not-top-level",
        "Citizen.phone: consent",
        "Citizen.permanentResidence.wardName: consent",
        "wardName: consent",
        "top-level",
    ),
    (
        "no-legal-basis",
        "legal_basis:\n  - document: Law on Residence No. 68/2020/QH14\n"
        "    note: (article unconfirmed)\n",
        "legal_basis: []\n",
        "legal_basis:",
        "at least 1",
    ),
    (
        "paper-field-not-in-fields",
        "fields: *residence",
        "fields:\n      - Citizen.permanentResidence\n      - Citizen.household",
        "- Citizen.household",
        "Citizen.household is not one of this procedure's fields",
    ),
    (
        "form-path-whose-field-is-not-in-fields",
        "path: Citizen.permanentResidence.wardName",
        "path: Citizen.household.head.fullName",
        "Citizen.household.head.fullName",
        "Citizen.household is not one of this procedure's fields",
    ),
    (
        "duplicate-form-name",
        "  - name: ward\n",
        "  - name: full_name # again\n",
        "# again",
        "'full_name' is already defined at form[0]",
    ),
    (
        "form-name-not-an-identifier",
        "  - name: ward\n",
        "  - name: ward name\n",
        "ward name",
        "identifier",
    ),
    (
        "label-without-english",
        "label: {vi: Xã, en: Commune}",
        "label: {vi: Xã}",
        "label: {vi: Xã}",
        "form.1.label.en",
    ),
    (
        "retention-not-positive",
        "online_level: full\n",
        "online_level: full\nretention_days: 0\n",
        "retention_days",
        "greater than 0",
    ),
    (
        "officer-disclosure-unknown",
        "online_level: full\n",
        "online_level: full\nofficer_disclosure: badge\n",
        "officer_disclosure",
        "'name' or 'role'",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "marker", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_invalid_entry_names_file_and_line(
    tmp_path: Path, old: str, new: str, marker: str, words: str
) -> None:
    text = _edit(old, new)
    path = _write(tmp_path, text)
    error = _error(tmp_path)
    assert error.path == str(path)
    assert error.line == _line(text, marker)
    assert words in str(error)
    assert str(error).startswith(f"{path}:{error.line}: ")


@pytest.mark.parametrize(
    ("old", "new", "marker", "words"),
    [
        (
            "Citizen.phone: consent",
            "Citizen.shoeSize: consent",
            "Citizen.shoeSize",
            "Citizen.shoeSize: Citizen has no field 'shoeSize'",
        ),
        (
            "  Citizen.phone: consent\n",
            "  Citizen.phone: consent\n  Person.height:\n    basis: consent\n"
            "    citation: asked on the form\n",
            "Person.height:",  # the key, not the lines of its rule
            "Person is not a canonical type",
        ),
        (
            "path: Citizen.permanentResidence.wardName",
            "path: Citizen.permanentResidence.street",
            "Citizen.permanentResidence.street",
            "Citizen.permanentResidence has no field 'street'",
        ),
        (
            "path: Citizen.fullName",
            "path: Citizen.fullName.givenName",
            "Citizen.fullName.givenName",
            "Citizen.fullName is a scalar",
        ),
    ],
    ids=["unknown-field", "unknown-type", "nested-form-path", "path-below-a-scalar"],
)
def test_non_canonical_path_names_file_and_line(
    tmp_path: Path, old: str, new: str, marker: str, words: str
) -> None:
    text = _edit(old, new)
    path = _write(tmp_path, text)
    load_catalogue(tmp_path)  # well formed: only the canonical schema lacks the path
    error = _error(tmp_path, canonical=True)
    assert error.path == str(path)
    assert error.line == _line(text, marker)
    assert words in str(error)


def test_non_canonical_path_in_a_json_file_names_the_line(tmp_path: Path) -> None:
    data = yaml.safe_load(_edit("Citizen.phone: consent", "Citizen.shoeSize: consent"))
    del data["x-residence"]
    text = orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
    path = _write(tmp_path, text, "procedure.json")
    error = _error(tmp_path, canonical=True)
    assert error.path == str(path)
    assert error.line == _line(text, '"Citizen.shoeSize"')


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    text = _edit("  Citizen.phone: consent\n", "  Citizen.phone: consent\n   Citizen.email: x: y\n")
    path = _write(tmp_path, text)
    error = _error(tmp_path)
    assert error.path == str(path)
    assert error.line == _line(text, "Citizen.email")
    assert "not valid YAML" in str(error)


def test_a_document_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, "- code: '1.000001'\n")
    error = _error(tmp_path)
    assert (error.path, error.line) == (str(path), 1)


def test_duplicate_code_across_files_names_both_files(tmp_path: Path) -> None:
    first = _write(tmp_path, VALID, "a.yaml")
    second = _write(tmp_path, VALID.replace("Test procedure", "Another"), "b.yml")
    error = _error(tmp_path)
    assert error.path == str(second)
    assert error.line == _line(VALID, "code:")
    assert str(first) in str(error)
    assert "'1.000001'" in str(error)


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# not a procedure\n", encoding="utf-8")
    error = _error(tmp_path)
    assert error.path == str(tmp_path)
    assert "no procedure files" in str(error)


def test_missing_directory(tmp_path: Path) -> None:
    error = _error(tmp_path / "nope")
    assert error.path == str(tmp_path / "nope")


def test_sensitive_field_by_law_with_a_citation_loads(tmp_path: Path) -> None:
    _write(
        tmp_path,
        _edit(
            "  Citizen.phone: consent\n",
            "  Citizen.phone: consent\n"
            "  Citizen.ethnicity:\n"
            "    basis: law\n"
            "    citation: Law on Civil Status No. 60/2014/QH13 Art. 14\n"
            "  Citizen.religion: consent\n",
        ),
    )
    procedure = load_catalogue(tmp_path).get("1.000001")
    rule = procedure.fields["Citizen.ethnicity"]
    assert rule == FieldRule(
        basis=Basis.LAW, citation="Law on Civil Status No. 60/2014/QH13 Art. 14"
    )
    assert procedure.basis("Citizen.ethnicity.name") is Basis.LAW
    assert procedure.fields["Citizen.religion"] is Basis.CONSENT


def test_local_code_and_province_suffix_load(tmp_path: Path) -> None:
    _write(tmp_path, VALID, "a.yaml")
    _write(tmp_path, _edit('code: "1.000001"', 'code: "1.012753.H19"'), "b.yaml")
    _write(
        tmp_path,
        _edit(
            'code: "1.000001"\ncode_status: confirmed', "code: LOCAL.x-1\ncode_status: provisional"
        ),
        "c.yaml",
    )
    assert list(load_catalogue(tmp_path).procedures) == ["1.000001", "1.012753.H19", "LOCAL.x-1"]


def test_a_paper_of_a_document_kind_reads_documents_and_needs_their_kind(tmp_path: Path) -> None:
    marriage = (
        "  - paper: {vi: Giấy chứng nhận kết hôn, en: Marriage certificate}\n"
        "    document_kind: MARRIAGE_CERTIFICATE\n"
        "    fields: [Document.documentId]\n"
    )
    text = _edit("form:\n", marriage + "form:\n").replace(
        "  Citizen.phone: consent\n", "  Citizen.phone: consent\n  Document.documentId: law\n"
    )
    _write(tmp_path, text)
    error = _error(tmp_path)
    assert "Document.kind among the fields" in str(error)
    _write(
        tmp_path,
        text.replace(
            "  Document.documentId: law\n", "  Document.documentId: law\n  Document.kind: law\n"
        ),
    )
    procedure = load_catalogue(tmp_path, canonical=schema.canonical_fields()).get("1.000001")
    assert procedure.papers_replaced[1].document_kind == "MARRIAGE_CERTIFICATE"


def test_only_document_paths_are_read_by_document_kind(tmp_path: Path) -> None:
    text = _edit(
        "    path: Citizen.fullName\n",
        "    path: Citizen.fullName\n    document_kind: BIRTH_CERTIFICATE\n",
    ).replace("  Citizen.phone: consent\n", "  Citizen.phone: consent\n  Document.kind: law\n")
    _write(tmp_path, text)
    assert "only Document paths are read by document kind" in str(_error(tmp_path))
