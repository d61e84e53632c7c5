"""Per-field decisions: combinators, the engine's precedence, law versus consent."""

from __future__ import annotations

import datetime

import pytest

from gateway.errors import (
    ClientNotAuthorised,
    ConsentRequired,
    PolicyDenied,
    PurposeNotAllowed,
    SubjectNotInCase,
)
from policies import (
    AccessRequest,
    ActiveConsent,
    AllOf,
    Allowed,
    AnyOf,
    ByConsent,
    ByLaw,
    Catalogue,
    Policy,
    Purpose,
    default_policy,
    load_catalogue,
)

RESIDENCE = "1.004222"
AN, BINH = "079203001234", "001185000777"
NOW = datetime.datetime(2026, 11, 25, tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def engine() -> Policy:
    return default_policy(load_catalogue())


def _ask(path: str, **changes: object) -> AccessRequest:
    fields = {
        "client_id": "VN/GOV/CA-HN/cu-tru",
        "agency_kinds": frozenset({"commune_police"}),
        "purpose": Purpose(RESIDENCE, "HS-1", "officer-1", (AN,)),
        "subject": AN,
        "path": path,
        "consents": (),
        **changes,
    }
    return AccessRequest(**fields)  # type: ignore[arg-type]


def _consent(**changes: object) -> ActiveConsent:
    fields = {
        "id": "c-1",
        "subject": AN,
        "consumer": "VN/GOV/CA-HN/cu-tru",
        "procedure": RESIDENCE,
        "fields": frozenset({"Citizen.phone"}),
        "valid_until": NOW + datetime.timedelta(days=1),
        "case": "HS-1",
        **changes,
    }
    return ActiveConsent(**fields)  # type: ignore[arg-type]


class _Grant:
    def __init__(self, basis: str) -> None:
        self.basis = basis

    def check(self, request: AccessRequest) -> Allowed:
        return Allowed("law", self.basis)


class _Refuse:
    def __init__(self, error: PolicyDenied) -> None:
        self.error = error

    def check(self, request: AccessRequest) -> None:
        raise self.error


class _Silent:
    def check(self, request: AccessRequest) -> None:
        return None


@pytest.mark.parametrize("combinator", [AllOf, AnyOf])
def test_combinators_refuse_an_empty_list(combinator) -> None:
    with pytest.raises(ValueError, match="at least one"):
        combinator([])


def test_all_of_raises_the_first_refusal_in_order() -> None:
    first, second = SubjectNotInCase(), PurposeNotAllowed()
    with pytest.raises(SubjectNotInCase):
        AllOf([_Silent(), _Refuse(first), _Refuse(second)]).check(_ask("Citizen.fullName"))
    assert AllOf([_Silent(), _Grant("a"), _Silent()]).check(_ask("x")) == Allowed("law", "a")


def test_any_of_takes_the_first_grant_or_raises_the_first_refusal() -> None:
    assert AnyOf([_Refuse(ConsentRequired()), _Grant("b")]).check(_ask("x")) == Allowed("law", "b")
    with pytest.raises(ConsentRequired):
        AnyOf([_Refuse(ConsentRequired()), _Refuse(PurposeNotAllowed())]).check(_ask("x"))
    assert AnyOf([_Silent()]).check(_ask("x")) is None


def test_a_law_field_is_allowed_with_its_citation(engine: Policy) -> None:
    allowed = engine.check(_ask("Citizen.permanentResidence"))
    assert allowed is not None
    assert allowed.code == "ALLOWED_BY_LAW"
    assert "Law on Residence" in allowed.reference
    assert "None" not in allowed.reference


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"agency_kinds": frozenset({"tax_authority"})}, ClientNotAuthorised),
        ({"subject": BINH}, SubjectNotInCase),
        ({"path": "Citizen.religion"}, PurposeNotAllowed),
        ({"path": "Citizen.phone"}, ConsentRequired),
    ],
)
def test_each_refusal(engine: Policy, changes: dict, error: type[PolicyDenied]) -> None:
    request = _ask(changes.pop("path", "Citizen.fullName"), **changes)
    with pytest.raises(error):
        engine.check(request)


def test_precedence_when_everything_is_wrong(engine: Policy) -> None:
    request = _ask("Citizen.religion", agency_kinds=frozenset({"tax_authority"}), subject=BINH)
    with pytest.raises(ClientNotAuthorised):
        engine.check(request)
    with pytest.raises(SubjectNotInCase):
        engine.check(_ask("Citizen.religion", subject=BINH))


def test_a_consent_allows_exactly_what_it_covers() -> None:
    catalogue = load_catalogue()
    policy = AnyOf([ByLaw(catalogue), ByConsent(catalogue, now=NOW)])
    allowed = policy.check(_ask("Citizen.phone", consents=(_consent(),)))
    assert allowed == Allowed("consent", "c-1")
    for changes in (
        {"subject": BINH},
        {"consumer": "VN/GOV/OTHER/x"},
        {"procedure": "1.000894"},
        {"fields": frozenset({"Citizen.email"})},
        {"valid_until": NOW - datetime.timedelta(seconds=1)},
        {"case": "HS-2"},
    ):
        with pytest.raises(ConsentRequired):
            policy.check(_ask("Citizen.phone", consents=(_consent(**changes),)))


def _tomorrow() -> datetime.datetime:
    """A consent still in force for the engine, which decides at the real time."""
    return datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)


def test_a_consent_given_for_one_case_is_not_read_under_another(engine: Policy) -> None:
    """The same client, procedure, subject and field, another case: consent required."""
    given = (_consent(case="HS-1", valid_until=_tomorrow()),)
    allowed = engine.check(_ask("Citizen.phone", consents=given))
    assert allowed == Allowed("consent", "c-1")
    other_case = Purpose(RESIDENCE, "HS-2", "officer-1", (AN,))
    with pytest.raises(ConsentRequired):
        engine.check(_ask("Citizen.phone", purpose=other_case, consents=given))


def test_a_procedure_may_declare_its_consents_reusable_across_cases() -> None:
    shipped = load_catalogue()
    reusable = Catalogue(
        p.model_copy(update={"consents_reusable_across_cases": True}) if p.code == RESIDENCE else p
        for p in shipped
    )
    other_case = Purpose(RESIDENCE, "HS-2", "officer-1", (AN,))
    given = (_consent(case="HS-1", valid_until=_tomorrow()),)
    request = _ask("Citizen.phone", purpose=other_case, consents=given)
    assert default_policy(reusable).check(request) == Allowed("consent", "c-1")
    with pytest.raises(ConsentRequired):
        default_policy(shipped).check(request)


def test_sensitive_fields_are_never_read_by_law_alone(engine: Policy) -> None:
    catalogue = load_catalogue()
    for procedure in catalogue:
        for path in ("Citizen.ethnicity", "Citizen.religion"):
            rule = procedure.fields.get(path)
            if rule is not None and procedure.basis(path) == "law":
                assert getattr(rule, "citation", "").strip()


def test_the_engines_grants_by_law_are_what_it_decides_for_every_subject_in_the_case() -> None:
    """`Engine.granted_by_law` is a shortcut of `check`: for every procedure, field and
    set of agency kinds, where it gives a grant, `check` gives that grant for each
    subject the case names, with or without consents; where `check` grants by law, it
    gives the grant too."""
    from policies import AgencyKind, Engine

    catalogue = load_catalogue()
    engine = default_policy(catalogue)
    assert isinstance(engine, Engine)
    subjects = ("001099012345", "079301000002")
    kind_sets = [frozenset(), *(frozenset({str(k)}) for k in AgencyKind)]
    kind_sets.append(frozenset(str(k) for k in AgencyKind))
    compared = granted = 0
    for procedure in catalogue:
        purpose = Purpose(procedure.code, "HS-1", "officer-1", subjects)
        paths = [*procedure.fields, "Citizen.phone", "Business.name"]
        consents = tuple(
            ActiveConsent(f"c-{s}", s, "VN/GOV/T/x", procedure.code, frozenset(paths),
                          datetime.datetime(2999, 1, 1, tzinfo=datetime.UTC), "HS-1")
            for s in subjects
        )  # fmt: skip
        for kinds in kind_sets:
            for path in paths:
                shortcut = engine.granted_by_law(purpose, kinds, path)
                for subject in subjects:
                    for given in ((), consents):
                        request = AccessRequest("VN/GOV/T/x", kinds, purpose, subject, path, given)
                        try:
                            full: object = engine.check(request)
                        except PolicyDenied as exc:
                            full = type(exc)
                        compared += 1
                        if shortcut is not None:
                            granted += 1
                            assert full == shortcut, (procedure.code, kinds, path)
                        else:
                            assert not (isinstance(full, Allowed) and full.basis == "law")
    assert granted > 100
    assert compared > granted


def test_a_changed_catalogue_decides_the_same_request_anew() -> None:
    """What a policy keeps between requests is its own catalogue's: an engine built from a
    catalogue whose procedure no longer needs a field refuses the request another engine,
    already asked it, still grants."""
    shipped = load_catalogue()
    path = "Citizen.birthDate"
    changed = Catalogue(
        p.model_copy(update={"fields": {k: v for k, v in p.fields.items() if k != path}})
        if p.code == RESIDENCE
        else p
        for p in shipped
    )
    before, after = default_policy(shipped), default_policy(changed)
    request = _ask(path)
    for _ in range(2):  # the second time from what the engine kept
        assert before.check(request).basis == "law"
        with pytest.raises(PurposeNotAllowed):
            after.check(request)
    assert before.check(request).basis == "law"
