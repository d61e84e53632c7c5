"""One synthetic person: the record under construction and how it is drawn.

The id follows the birth registration: PPP is an old province (usually the one the
household's ward lay in, a quarter of the time anywhere), C and YY the birth date and sex.
"Anywhere" is anywhere in the person's ethnic group's home provinces: a Kinh person may
come from any province, a person of another group only from one where that group lives
(`sandbox._demographics.ETHNIC_GROUPS`); the same holds for the hometown.
"""

import random
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from sandbox._addresses import AddressMaker, JSONObject
from sandbox._dates import REFERENCE_DATE, age_on, random_day_in
from sandbox._demographics import BLOOD_TYPES, ETHNIC_GROUPS, RELIGIONS, SINGLE
from sandbox._geography import WardInfo
from sandbox._identifiers import PersonalIdIssuer
from sandbox._names import ascii_fold, given_names
from sandbox._old_provinces import OLD_PROVINCES, OLD_TO_2025

ADULT_AGE: Final = 18
_ETHNIC: Final = tuple((group.code, group.name) for group in ETHNIC_GROUPS)
_ETHNIC_WEIGHTS: Final = tuple(group.weight for group in ETHNIC_GROUPS)
_HOME_PROVINCES: Final = {group.code: group.provinces for group in ETHNIC_GROUPS}
# The old provinces (as in personal ids) each group can have been born in, in id order.
_OLD_HOMES: Final = {
    group.code: tuple(
        old
        for old in OLD_PROVINCES
        if group.provinces is None or OLD_TO_2025[old] in group.provinces
    )
    for group in ETHNIC_GROUPS
}
_RELIGION: Final = tuple(name for name, _ in RELIGIONS)
_RELIGION_WEIGHTS: Final = tuple(weight for _, weight in RELIGIONS)
_BLOOD: Final = tuple(name for name, _ in BLOOD_TYPES)
_BLOOD_WEIGHTS: Final = tuple(weight for _, weight in BLOOD_TYPES)
_MOBILE_PREFIXES: Final = (
    "032", "033", "034", "035", "036", "037", "038", "039", "070", "076", "077", "078",
    "079", "081", "082", "083", "084", "085", "086", "088", "089", "090", "091", "093",
    "094", "096", "097", "098",
)  # fmt: skip
_MAIL_DOMAINS: Final = ("gmail.com", "gmail.com", "gmail.com", "yahoo.com", "outlook.com")


def home_provinces(ethnicity: tuple[str, str]) -> frozenset[int] | None:
    """The 2025 province codes an ethnic group (code, name) lives in; None: everywhere."""
    return _HOME_PROVINCES[ethnicity[0]]


@dataclass(eq=False, slots=True)
class Household:
    """A household under construction: id, address and members with their relation."""

    ma_ho: str
    address: JSONObject
    members: list[tuple["Person", str]] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class Person:
    """One citizen and the links the population database keeps about them."""

    pid: str
    family: str
    middle: str
    given: str
    birth: date
    female: bool
    birth_province: str
    ethnicity: tuple[str, str]
    religion: str
    birth_registration: JSONObject
    hometown: str
    marital: str = SINGLE
    other_names: list[str] = field(default_factory=list)
    blood: str | None = None
    cmnd: str | None = None
    phone: str | None = None
    email: str | None = None
    death: date | None = None
    household: Household | None = None
    relation: str | None = None
    father: "Person | None" = None
    mother: "Person | None" = None
    spouse: "Person | None" = None
    representative: "Person | None" = None
    children: list["Person"] = field(default_factory=list)
    represented: list["Person"] = field(default_factory=list)
    permanent: JSONObject | None = None
    temporary: JSONObject | None = None
    absence: dict[str, Any] | None = None

    @property
    def full_name(self) -> str:
        """Family, middle and given name, Vietnamese order."""
        return f"{self.family} {self.middle} {self.given}"

    @property
    def is_adult(self) -> bool:
        """Eighteen or older on the reference date."""
        return age_on(self.birth, REFERENCE_DATE) >= ADULT_AGE


class PersonFactory:
    """Draws individuals from a seeded ``random.Random``; keeps every one it made."""

    def __init__(self, rng: random.Random, addresses: AddressMaker) -> None:
        self._rng = rng
        self._addresses = addresses
        self._ids = PersonalIdIssuer(rng)
        self._cmnd: set[str] = set()
        self.people: list[Person] = []
        """Everyone made so far, in order."""

    def make(
        self,
        family: str,
        female: bool,
        birth_year: int,
        ward: WardInfo,
        ethnicity: tuple[str, str],
        religion: str,
    ) -> Person:
        """A new person; the caller wires family links and residence."""
        rng = self._rng
        birth = random_day_in(rng, birth_year)
        homes = _OLD_HOMES[ethnicity[0]]
        birth_province = self._birth_province(ward, homes)
        middle, given = given_names(rng, female=female)
        person = Person(
            pid=self._ids.issue(province=birth_province, birth_date=birth, female=female),
            family=family,
            middle=middle,
            given=given,
            birth=birth,
            female=female,
            birth_province=birth_province,
            ethnicity=ethnicity,
            religion=religion,
            birth_registration=self._addresses.birth_registration(birth_province),
            hometown=self._addresses.hometown(
                birth_province if rng.random() < 0.7 else rng.choice(homes)
            ),
        )
        if rng.random() < 0.03:
            person.other_names.append(f"{family} {given_names(rng, female=female)[1]}")
        if rng.random() < 0.05:
            person.blood = rng.choices(_BLOOD, weights=_BLOOD_WEIGHTS)[0]
        if birth_year < 2000 and rng.random() < 0.7:
            person.cmnd = self._new_cmnd()
        age = age_on(birth, REFERENCE_DATE)
        if age >= 15 and rng.random() < 0.85:
            person.phone = f"{rng.choice(_MOBILE_PREFIXES)}{rng.randrange(10_000_000):07d}"
        if 15 <= age <= 70 and rng.random() < 0.4:
            local = ascii_fold(f"{given}{family}").replace(" ", "")
            person.email = f"{local}{rng.randint(1, 9999)}@{rng.choice(_MAIL_DOMAINS)}"
        self.people.append(person)
        return person

    def _birth_province(self, ward: WardInfo, homes: tuple[str, ...]) -> str:
        rng = self._rng
        if rng.random() < 0.25:
            return rng.choice(homes)
        if ward.old_province is not None:
            return ward.old_province
        local = [old for old, new in OLD_TO_2025.items() if new == ward.province_code]
        return rng.choice(local)

    def ethnicity(self, *, province: int | None = None) -> tuple[str, str]:
        """An ethnic group (code, name), drawn by census weight.

        With ``province`` (a 2025 code), only among the groups that live there.
        """
        if province is None:
            return self._rng.choices(_ETHNIC, weights=_ETHNIC_WEIGHTS)[0]
        kept = [
            i
            for i, group in enumerate(ETHNIC_GROUPS)
            if group.provinces is None or province in group.provinces
        ]
        return self._rng.choices(
            [_ETHNIC[i] for i in kept], weights=[_ETHNIC_WEIGHTS[i] for i in kept]
        )[0]

    def religion(self) -> str:
        """A religion, drawn by weight ("Không" for most)."""
        return self._rng.choices(_RELIGION, weights=_RELIGION_WEIGHTS)[0]

    def _new_cmnd(self) -> str:
        while True:
            candidate = f"{self._rng.randint(0, 3)}{self._rng.randrange(100_000_000):08d}"
            if candidate not in self._cmnd:
                self._cmnd.add(candidate)
                return candidate
