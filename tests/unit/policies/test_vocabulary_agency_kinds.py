"""The shared vocabulary of agency kinds: every kind has its labels, ids are stable."""

import re

import pytest

from policies import AGENCY_KIND_LABELS, AgencyKind, load_catalogue


def test_every_kind_has_a_vietnamese_and_an_english_label() -> None:
    assert set(AGENCY_KIND_LABELS) == set(AgencyKind)
    for vi, en in AGENCY_KIND_LABELS.values():
        assert vi.strip()
        assert en.strip()


@pytest.mark.parametrize("index", [0, 1])
def test_labels_tell_kinds_apart(index: int) -> None:
    labels = [pair[index] for pair in AGENCY_KIND_LABELS.values()]
    assert len(set(labels)) == len(labels)


@pytest.mark.parametrize("kind", list(AgencyKind))
def test_ids_are_snake_case_and_compare_as_strings(kind: AgencyKind) -> None:
    assert re.fullmatch(r"[a-z]+(_[a-z]+)*", kind.value)
    assert kind == kind.value
    assert AgencyKind(kind.value) is kind


def test_kinds_of_the_two_level_government_only() -> None:
    # Districts were abolished on 1 July 2025: no kind may name one.
    assert not [k for k in AgencyKind if "district" in k.value]


def test_labels_cannot_be_changed_at_run_time() -> None:
    with pytest.raises(TypeError):
        AGENCY_KIND_LABELS[AgencyKind.HEALTH] = ("x", "y")  # type: ignore[index]


def test_the_catalogue_uses_the_vocabulary() -> None:
    used = {kind for procedure in load_catalogue() for kind in procedure.agency_kinds}
    assert used <= set(AgencyKind)
    assert AgencyKind.COMMUNE_POLICE in used
