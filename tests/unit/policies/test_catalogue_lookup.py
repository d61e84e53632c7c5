"""Looking procedures up: `get`, `basis`, and the catalogue's immutability."""

import pytest

from gateway.errors import GatewayError
from policies import Basis, Catalogue, UnknownProcedure, load_catalogue


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def test_get_returns_the_procedure(catalogue: Catalogue) -> None:
    procedure = catalogue.get("1.004222")
    assert procedure.code == "1.004222"
    assert procedure.name.vi == "Đăng ký thường trú"
    assert "1.004222" in catalogue
    assert catalogue.procedures["1.004222"] is procedure


def test_get_of_an_unknown_code_raises_unknown_procedure(catalogue: Catalogue) -> None:
    with pytest.raises(UnknownProcedure) as caught:
        catalogue.get("9.999999")
    error = caught.value
    assert isinstance(error, GatewayError)
    assert error.code == "UNKNOWN_PROCEDURE"
    assert error.http_status == 400
    assert error.to_body() == {
        "code": "UNKNOWN_PROCEDURE",
        "message": "No procedure '9.999999' in the catalogue.",
        "detail": {"procedure": "9.999999"},
    }
    assert error.extensions["code"] == "UNKNOWN_PROCEDURE"


@pytest.mark.parametrize(
    ("code", "path", "expected"),
    [
        ("1.004222", "Citizen.permanentResidence", Basis.LAW),
        ("1.004222", "Citizen.permanentResidence.wardName", Basis.LAW),
        ("1.004222", "Citizen.phone", Basis.CONSENT),
        ("1.004222", "Citizen.religion", None),
        ("1.004222", "Business.name", None),
        ("1.001193", "Citizen.ethnicity", Basis.LAW),
        ("1.001193", "Citizen.ethnicity.name", Basis.LAW),
        ("3.000182", "Citizen.ethnicity", Basis.CONSENT),
        ("1.000656", "Citizen.phone", None),
    ],
)
def test_basis_answers(catalogue: Catalogue, code: str, path: str, expected: Basis | None) -> None:
    assert catalogue.basis(code, path) is expected


def test_basis_of_an_unknown_procedure_raises(catalogue: Catalogue) -> None:
    with pytest.raises(UnknownProcedure):
        catalogue.basis("LOCAL.nothing", "Citizen.fullName")


def test_iterates_in_code_order(catalogue: Catalogue) -> None:
    codes = [p.code for p in catalogue]
    assert codes == sorted(codes) == list(catalogue.procedures)
    assert len(catalogue) == len(codes)


def test_catalogue_cannot_be_changed(catalogue: Catalogue) -> None:
    with pytest.raises(AttributeError):
        catalogue.version = "0" * 64  # type: ignore[misc]
    with pytest.raises(AttributeError):
        catalogue._procedures = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        catalogue.procedures["x"] = catalogue.get("1.004222")  # type: ignore[index]
    with pytest.raises(ValueError, match="frozen"):
        catalogue.get("1.004222").code = "1.000000"  # type: ignore[misc]


def test_two_entries_with_one_code_are_refused(catalogue: Catalogue) -> None:
    procedure = catalogue.get("1.004222")
    with pytest.raises(ValueError, match="appears twice"):
        Catalogue([procedure, procedure])


def test_a_catalogue_built_in_code_has_the_same_version(catalogue: Catalogue) -> None:
    assert Catalogue(reversed(list(catalogue))).version == catalogue.version
