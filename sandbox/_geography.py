"""Post-2025 provinces and wards, and the old province a ward most likely lay in.

Ward names come from ``vietnam_provinces`` with runs of spaces collapsed (the source
data has a few double spaces). ``WardInfo.old_province`` is only set when it is
certain: GSO commune codes were handed out in old-province order and a new ward kept
the code of one of its communes, so inside a merged province the wards split into
runs of codes, one per group of old provinces that are adjacent in that order. A run
that belongs to a single old province names it; anything ambiguous stays ``None``.
"""

import functools
import itertools
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from vietnam_provinces import Province, Ward

from sandbox._old_provinces import OLD_TO_2025

_WARD_PREFIXES: Final = ("Phường ", "Xã ", "Đặc khu ")


@dataclass(frozen=True, slots=True)
class WardInfo:
    """A 2025 commune-level unit."""

    code: int
    name: str
    province_code: int
    is_urban: bool
    old_province: str | None

    @property
    def short_name(self) -> str:
        """The name without its "Phường"/"Xã"/"Đặc khu" prefix."""
        for prefix in _WARD_PREFIXES:
            if self.name.startswith(prefix):
                return self.name[len(prefix) :]
        return self.name


@dataclass(frozen=True, slots=True)
class ProvinceInfo:
    """A 2025 province-level unit and its wards, ordered by code."""

    code: int
    name: str
    wards: tuple[WardInfo, ...]


def _clean(name: str) -> str:
    return " ".join(name.split())


def _blocks(members: list[str]) -> list[list[str]]:
    """Split one 2025 province's old members into runs adjacent in code order."""
    order = sorted(OLD_TO_2025, key=int)
    blocks: list[list[str]] = []
    for old in order:
        if old not in members:
            if blocks and blocks[-1]:
                blocks.append([])
            continue
        if not blocks:
            blocks.append([])
        blocks[-1].append(old)
    return [block for block in blocks if block]


def _old_province_by_ward() -> dict[int, str]:
    wards = sorted(Ward.iter_all(), key=lambda w: int(w.code))
    runs: dict[int, list[list[int]]] = {}
    for province_code, group in itertools.groupby(wards, key=lambda w: int(w.province_code)):
        runs.setdefault(province_code, []).append([int(w.code) for w in group])
    found: dict[int, str] = {}
    for province_code, province_runs in runs.items():
        members = [old for old, new in OLD_TO_2025.items() if new == province_code]
        blocks = _blocks(members)
        if len(members) == 1:
            pairs = [(run, members) for run in province_runs]
        elif len(blocks) == len(province_runs):
            pairs = list(zip(province_runs, blocks, strict=True))
        else:
            continue
        for run, block in pairs:
            if len(block) == 1:
                found.update(dict.fromkeys(run, block[0]))
    return found


@functools.cache
def provinces() -> tuple[ProvinceInfo, ...]:
    """All 34 provinces of 2025, in the library's order."""
    old_by_ward = _old_province_by_ward()
    result = []
    for province in Province.iter_all():
        wards = tuple(
            WardInfo(
                code=int(w.code),
                name=_clean(w.name),
                province_code=int(province.code),
                is_urban=w.division_type.value == "phường",
                old_province=old_by_ward.get(int(w.code)),
            )
            for w in sorted(Ward.iter_by_province(province.code), key=lambda w: int(w.code))
        )
        result.append(
            ProvinceInfo(code=int(province.code), name=_clean(province.name), wards=wards)
        )
    return tuple(result)


@functools.cache
def province_by_code() -> MappingProxyType[int, ProvinceInfo]:
    """Provinces keyed by their 2025 code."""
    return MappingProxyType({p.code: p for p in provinces()})


@functools.cache
def wards_by_old_province() -> MappingProxyType[str, tuple[WardInfo, ...]]:
    """Wards known for certain to lie in each old province (may be empty)."""
    grouped: dict[str, list[WardInfo]] = {old: [] for old in OLD_TO_2025}
    for province in provinces():
        for ward in province.wards:
            if ward.old_province is not None:
                grouped[ward.old_province].append(ward)
    return MappingProxyType({old: tuple(wards) for old, wards in grouped.items()})
