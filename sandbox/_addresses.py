"""ADDRESS records in real 2025 provinces and wards, with plausible street detail."""

import random
from collections.abc import Collection
from typing import Any, Final

from faker import Faker

from sandbox._dates import REFERENCE_DATE, REFORM_DATE, random_date
from sandbox._geography import ProvinceInfo, WardInfo, province_by_code, wards_by_old_province
from sandbox._old_provinces import OLD_PROVINCES, OLD_TO_2025

JSONObject = dict[str, Any]

# Rough 2025 populations in hundreds of thousands, to place households.
_POPULATION_WEIGHTS: Final = {
    1: 87, 4: 6, 8: 19, 11: 7, 12: 5, 14: 13, 15: 18, 19: 18, 20: 8, 22: 14,
    24: 36, 25: 40, 31: 47, 33: 36, 37: 44, 38: 37, 40: 35, 42: 16, 44: 19, 46: 12,
    48: 31, 51: 22, 52: 36, 56: 22, 66: 33, 68: 39, 75: 45, 79: 140, 80: 33, 82: 44,
    86: 43, 91: 49, 92: 42, 96: 26,
}  # fmt: skip
# Head offices cluster in the two big cities.
_BUSINESS_WEIGHTS: Final = {
    code: weight * (6 if code in (1, 79) else 1) for code, weight in _POPULATION_WEIGHTS.items()
}
_SOUTH: Final = frozenset({75, 79, 80, 82, 86, 91, 92, 96})
_HIGHLANDS: Final = frozenset({52, 66, 68})


class AddressMaker:
    """Builds ADDRESS dicts from a seeded ``random.Random`` and a seeded Faker."""

    def __init__(self, rng: random.Random, fake: Faker) -> None:
        self._rng = rng
        self._fake = fake
        self._provinces = province_by_code()
        codes = sorted(self._provinces)
        self._codes = codes
        self._people_weights = [_POPULATION_WEIGHTS[c] for c in codes]
        self._business_weights = [_BUSINESS_WEIGHTS[c] for c in codes]

    def province(
        self, *, business: bool = False, within: Collection[int] | None = None
    ) -> ProvinceInfo:
        """A province drawn by population (or by where head offices are).

        ``within`` keeps the draw to those province codes, each still by its weight.
        """
        codes = self._codes
        weights = self._business_weights if business else self._people_weights
        if within is not None:
            kept = [i for i, code in enumerate(codes) if code in within]
            if not kept:
                raise ValueError(f"no province among {sorted(within)}")
            codes = [codes[i] for i in kept]
            weights = [weights[i] for i in kept]
        return self._provinces[self._rng.choices(codes, weights=weights)[0]]

    def ward(self, *, business: bool = False, within: Collection[int] | None = None) -> WardInfo:
        """A ward in a province drawn by :meth:`province`."""
        return self._rng.choice(self.province(business=business, within=within).wards)

    def detail(self, ward: WardInfo) -> str:
        """House number and street in a town, hamlet in the countryside."""
        rng = self._rng
        if ward.is_urban or rng.random() < 0.2:
            street = self._fake.street_name()
            number = rng.randint(1, 350)
            if rng.random() < 0.3:
                lane = rng.randint(1, 60)
                if ward.province_code in _SOUTH:
                    return f"Số {number}/{lane}, hẻm {rng.randint(1, 400)}, đường {street}"
                return f"Số {lane}, ngõ {number}, phố {street}"
            road = "đường" if ward.province_code in _SOUTH or rng.random() < 0.5 else "phố"
            return f"Số {number}, {road} {street}"
        if ward.province_code in _SOUTH:
            hamlet = "Ấp"
        elif ward.province_code in _HIGHLANDS:
            hamlet = rng.choice(("Thôn", "Buôn", "Làng"))
        else:
            hamlet = rng.choice(("Thôn", "Xóm"))
        return f"{hamlet} {rng.randint(1, 15)}"

    def address(self, ward: WardInfo, *, moved_in: bool = False) -> JSONObject:
        """An ADDRESS in ``ward``; ``moved_in`` dates it after the reform, with no old wording."""
        detail = self.detail(ward)
        legacy = None
        if moved_in:
            valid_from = random_date(self._rng, REFORM_DATE, REFERENCE_DATE)
        else:
            valid_from = REFORM_DATE
            if ward.old_province is not None:
                legacy = f"{detail}, {ward.short_name}, {OLD_PROVINCES[ward.old_province]}"
        return _address(ward, detail, legacy, valid_from.isoformat())

    def birth_registration(self, old_province: str) -> JSONObject:
        """Where a birth in old province ``old_province`` was registered, in 2025 terms."""
        known = wards_by_old_province()[old_province]
        if known:
            ward = self._rng.choice(known)
            legacy = f"{ward.short_name}, {OLD_PROVINCES[old_province]}"
        else:
            ward = self._rng.choice(self._provinces[OLD_TO_2025[old_province]].wards)
            legacy = OLD_PROVINCES[old_province]
        return _address(ward, f"UBND {ward.name}", legacy, REFORM_DATE.isoformat())

    def hometown(self, old_province: str) -> str:
        """Quê quán in the old free-text style, e.g. "Tuy Phước, Bình Định"."""
        known = wards_by_old_province()[old_province]
        if known:
            return f"{self._rng.choice(known).short_name}, {OLD_PROVINCES[old_province]}"
        return OLD_PROVINCES[old_province]


def _address(ward: WardInfo, detail: str, legacy: str | None, valid_from: str) -> JSONObject:
    return {
        "ma_tinh": ward.province_code,
        "ten_tinh": province_by_code()[ward.province_code].name,
        "ma_xa": ward.code,
        "ten_xa": ward.name,
        "chi_tiet": detail,
        "dia_chi_cu": legacy,
        "hieu_luc_tu": valid_from,
    }
