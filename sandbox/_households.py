"""Synthetic households, built so that family links are coherent.

A household is a head, maybe a spouse, maybe one of the head's parents, and children of
the head (and spouse) who carry the father's family name. Parents are 20-45 years
older than their children by birth year. Minors are represented by a parent in the
household. About 1 % of records are deceased and belong to no household.

A household's ethnic group is drawn first, by national share, and the household placed
in one of the provinces that group lives in; a spouse of another group is one of the
groups of that province. Nobody under the legal marriage age (men 20, women 18) is
married, divorced or widowed.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from sandbox._addresses import AddressMaker
from sandbox._dates import REFERENCE_DATE, add_years, age_on, random_date
from sandbox._demographics import DIVORCED, MARRIED, SINGLE, WIDOWED, may_have_married
from sandbox._geography import WardInfo
from sandbox._names import family_name
from sandbox._person import Household, Person, PersonFactory, home_provinces

_SIZES: Final = (1, 2, 3, 4, 5, 6, 7)
_SIZE_WEIGHTS: Final = (14, 20, 23, 23, 12, 5, 3)
_ABSENCE_DESTINATIONS: Final = (
    "Hàn Quốc", "Nhật Bản", "Đài Loan (Trung Quốc)", "Thành phố Hồ Chí Minh",
    "Thành phố Hà Nội", "Bình Dương cũ, Thành phố Hồ Chí Minh", "Cộng hòa Liên bang Đức",
)  # fmt: skip
_PARENT_GAP: Final = (20, 45)


@dataclass(slots=True)
class Population:
    """Everyone generated: households in order, then every person in order."""

    households: list[Household]
    people: list[Person]


class PopulationBuilder:
    """Builds a :class:`Population` from seeded random sources; one use per instance."""

    def __init__(self, rng: random.Random, addresses: AddressMaker) -> None:
        self._rng = rng
        self._addresses = addresses
        self._people = PersonFactory(rng, addresses)
        self._household_ids: set[str] = set()

    def build(self, citizens: int) -> Population:
        """``citizens`` records: 1 % deceased, the rest living in households."""
        deceased = citizens // 100
        remaining = citizens - deceased
        households = []
        while remaining > 0:
            size = min(self._rng.choices(_SIZES, weights=_SIZE_WEIGHTS)[0], remaining)
            households.append(self._household(size))
            remaining -= size
        for _ in range(deceased):
            self._deceased()
        return Population(households=households, people=self._people.people)

    def _household(self, size: int) -> Household:
        rng = self._rng
        ethnicity = self._people.ethnicity()
        ward = self._addresses.ward(within=home_provinces(ethnicity))
        household = Household(
            ma_ho=self._new_household_id(),
            address=self._addresses.address(ward, moved_in=rng.random() < 0.12),
        )
        religion = self._people.religion()
        if size == 1:
            self._single(household, ward, ethnicity, religion)
            return household
        couple = rng.random() < (0.7 if size == 2 else 0.85)
        grandparent = size >= 4 and rng.random() < 0.25
        n_children = size - 1 - int(couple) - int(grandparent)
        # A head over ~70 could not have a living parent within the 92-year cap.
        oldest = 65 if grandparent else 72
        father_year, mother_year, child_years = self._generation_years(couple, n_children, oldest)
        head_is_man = father_year is not None and (mother_year is None or rng.random() < 0.8)
        father = mother = None
        if father_year is not None:
            father = self._people.make(
                family_name(rng), False, father_year, ward, ethnicity, religion
            )
        if mother_year is not None:
            mother_ethnicity = (
                ethnicity
                if rng.random() < 0.9
                else self._people.ethnicity(province=ward.province_code)
            )
            mother_religion = religion if rng.random() < 0.85 else self._people.religion()
            mother = self._people.make(
                family_name(rng), True, mother_year, ward, mother_ethnicity, mother_religion
            )
        head = father if head_is_man else mother
        assert head is not None
        self._join(household, head, "Chủ hộ")
        if father is not None and mother is not None:
            father.spouse, mother.spouse = mother, father
            father.marital = mother.marital = MARRIED
            spouse = mother if head is father else father
            self._join(household, spouse, "Vợ" if spouse.female else "Chồng")
        else:
            head.marital = self._marital(head, (DIVORCED, WIDOWED, SINGLE), (50, 35, 15))
        if grandparent:
            self._grandparent(household, head, ward)
        for year in child_years:
            self._child(household, ward, year, father, mother)
        return household

    def _generation_years(
        self, couple: bool, n_children: int, oldest: int
    ) -> tuple[int | None, int | None, list[int]]:
        """Birth years for father, mother (one may be None) and children."""
        rng = self._rng
        now = REFERENCE_DATE.year
        low_gap, high_gap = _PARENT_GAP
        while True:
            if n_children == 0:
                # Born by these years, the man is 20 and the woman 18 on the reference
                # day whatever their birthday: both old enough to be married.
                first = min(now - rng.randint(20, 88), now - 21)
                second = min(first + rng.randint(-4, 8), now - 20)
                return (first, second, []) if couple else (first, None, [])
            first = now - rng.randint(22, oldest)
            years = [first]
            if couple:
                years.append(min(first + rng.randint(-3, 8), now - 20))
            oldest_child = max(years) + low_gap
            youngest_child = min(min(years) + high_gap, now)
            if oldest_child > youngest_child:
                continue
            children = sorted(rng.randint(oldest_child, youngest_child) for _ in range(n_children))
            if not couple:
                if rng.random() < 0.5:
                    return first, None, children
                return None, first, children
            return years[0], years[1], children

    def _single(
        self, household: Household, ward: WardInfo, ethnicity: tuple[str, str], religion: str
    ) -> None:
        rng = self._rng
        year = REFERENCE_DATE.year - rng.randint(18, 90)
        person = self._people.make(
            family_name(rng), rng.random() < 0.5, year, ward, ethnicity, religion
        )
        old = REFERENCE_DATE.year - year > 65
        person.marital = self._marital(
            person, (SINGLE, DIVORCED, WIDOWED), (15, 15, 70) if old else (65, 25, 10)
        )
        self._join(household, person, "Chủ hộ")

    def _grandparent(self, household: Household, head: Person, ward: WardInfo) -> None:
        rng = self._rng
        low_gap, high_gap = _PARENT_GAP
        earliest = max(head.birth.year - high_gap, REFERENCE_DATE.year - 92)
        latest = head.birth.year - low_gap
        assert earliest <= latest, "head too old for a living parent"
        female = rng.random() < 0.6
        family = head.family if not female else family_name(rng)
        person = self._people.make(
            family, female, rng.randint(earliest, latest), ward, head.ethnicity, head.religion
        )
        person.marital = self._marital(person, (WIDOWED, DIVORCED), (85, 15))
        person.children.append(head)
        if female:
            head.mother = person
        else:
            head.father = person
        self._join(household, person, "Mẹ" if female else "Bố")

    def _child(
        self,
        household: Household,
        ward: WardInfo,
        year: int,
        father: Person | None,
        mother: Person | None,
    ) -> None:
        rng = self._rng
        parent = father or mother
        assert parent is not None
        family = father.family if father is not None else family_name(rng)
        child = self._people.make(
            family, rng.random() < 0.49, year, ward, parent.ethnicity, parent.religion
        )
        child.father, child.mother = father, mother
        for p in (father, mother):
            if p is not None:
                p.children.append(child)
        if child.is_adult:
            child.marital = self._marital(child, (SINGLE, DIVORCED), (90, 10))
        else:
            child.representative = parent
            parent.represented.append(child)
        self._join(household, child, "Con")

    def _join(self, household: Household, person: Person, relation: str) -> None:
        person.household = household
        person.relation = relation
        person.permanent = household.address
        household.members.append((person, relation))
        if person.is_adult:
            self._residence(person)

    def _residence(self, person: Person) -> None:
        rng = self._rng
        age = age_on(person.birth, REFERENCE_DATE)
        roll = rng.random()
        if age <= 60 and roll < 0.06:
            ward = self._addresses.ward(within=home_provinces(person.ethnicity))
            person.temporary = self._addresses.address(ward, moved_in=True)
        elif roll < 0.075:
            start = random_date(rng, date(2025, 1, 1), REFERENCE_DATE)
            person.absence = {
                "tu_ngay": start.isoformat(),
                "den_ngay": (start + timedelta(days=rng.randint(90, 730))).isoformat(),
                "noi_den": rng.choice(_ABSENCE_DESTINATIONS),
            }

    def _deceased(self) -> None:
        rng = self._rng
        ethnicity = self._people.ethnicity()
        ward = self._addresses.ward(within=home_provinces(ethnicity))
        year = REFERENCE_DATE.year - rng.randint(35, 100)
        person = self._people.make(
            family_name(rng),
            rng.random() < 0.5,
            year,
            ward,
            ethnicity,
            self._people.religion(),
        )
        earliest = max(add_years(person.birth, 30), date(2000, 1, 1))
        person.death = random_date(rng, earliest, REFERENCE_DATE - timedelta(days=1))
        person.marital = self._marital(person, (WIDOWED, DIVORCED, SINGLE), (60, 15, 25))
        person.phone = person.email = None
        person.permanent = self._addresses.address(ward)

    def _marital(self, person: Person, statuses: Sequence[str], weights: Sequence[int]) -> str:
        """A marital status drawn by weight; single for anyone under the marriage age.

        The age is taken on the reference day, or on the day of death.
        """
        drawn = self._rng.choices(statuses, weights=weights)[0]
        age = age_on(person.birth, person.death or REFERENCE_DATE)
        return drawn if may_have_married(female=person.female, age=age) else SINGLE

    def _new_household_id(self) -> str:
        while True:
            candidate = f"HO{self._rng.randrange(10_000_000_000):010d}"
            if candidate not in self._household_ids:
                self._household_ids.add(candidate)
                return candidate
