"""The deterministic synthetic dataset both sandbox services serve.

Same settings, same bytes: every draw comes from one ``random.Random`` and one Faker
instance seeded from ``settings.seed``, dates are relative to a fixed reference day,
and nothing iterates over a set.
"""

import random
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

from faker import Faker

from sandbox._addresses import AddressMaker, JSONObject
from sandbox._businesses import ACTIVE, BusinessBuilder
from sandbox._households import PopulationBuilder
from sandbox._render import Renderer
from sandbox.config import SandboxSettings

_T = TypeVar("_T")
_SAMPLE_MIN_HOUSEHOLD = 3


@dataclass(frozen=True, slots=True)
class BusinessSample:
    """An enterprise id with its legal representative's personal id."""

    ma_so_doanh_nghiep: str
    so_dinh_danh_nguoi_dai_dien: str


@dataclass(frozen=True, slots=True)
class Sample:
    """Ids worth querying: living adults in households of three or more, and so on."""

    citizens: tuple[str, ...]
    households: tuple[str, ...]
    businesses: tuple[BusinessSample, ...]

    def to_json(self) -> JSONObject:
        """The body of ``GET /_sandbox/sample``."""
        return {
            "citizens": list(self.citizens),
            "households": list(self.households),
            "businesses": [
                {
                    "ma_so_doanh_nghiep": b.ma_so_doanh_nghiep,
                    "so_dinh_danh_nguoi_dai_dien": b.so_dinh_danh_nguoi_dai_dien,
                }
                for b in self.businesses
            ],
        }


@dataclass(frozen=True, slots=True)
class Dataset:
    """JSON-ready records keyed by id; the mappings are read-only, treat records so too."""

    citizens: MappingProxyType[str, JSONObject]
    households: MappingProxyType[str, JSONObject]
    businesses: MappingProxyType[str, JSONObject]
    sample: Sample


def generate(settings: SandboxSettings) -> Dataset:
    """Build the dataset for ``settings`` (citizens, seed and business count matter)."""
    # Reproducible synthetic data, not secrets.
    rng = random.Random(settings.seed)  # noqa: S311  # nosec B311
    fake = Faker("vi_VN")
    fake.seed_instance(settings.seed)
    addresses = AddressMaker(rng, fake)
    population = PopulationBuilder(rng, addresses).build(settings.citizens)

    renderer = Renderer()
    citizens = {person.pid: renderer.citizen(person) for person in population.people}
    households = {h.ma_ho: renderer.household(h) for h in population.households}

    adults = [p for p in population.people if p.death is None and p.is_adult]
    count = settings.businesses if settings.businesses is not None else settings.citizens // 10
    businesses = {
        record["ma_so_doanh_nghiep"]: record
        for record in BusinessBuilder(rng, addresses).build(count, adults)
    }

    big_households = [h for h in population.households if len(h.members) >= _SAMPLE_MIN_HOUSEHOLD]
    sample_citizens = [p.pid for h in big_households for p, _ in h.members if p.is_adult]
    active = [b for b in businesses.values() if b["tinh_trang"] == ACTIVE]
    sample = Sample(
        citizens=tuple(_pick(rng, sample_citizens, settings.sample_size)),
        households=tuple(_pick(rng, [h.ma_ho for h in big_households], settings.sample_size)),
        businesses=tuple(
            BusinessSample(
                ma_so_doanh_nghiep=b["ma_so_doanh_nghiep"],
                so_dinh_danh_nguoi_dai_dien=b["nguoi_dai_dien_phap_luat"]["so_dinh_danh"],
            )
            for b in _pick(rng, active, settings.sample_size)
        ),
    )
    return Dataset(
        citizens=MappingProxyType(citizens),
        households=MappingProxyType(households),
        businesses=MappingProxyType(businesses),
        sample=sample,
    )


def _pick(rng: random.Random, items: list[_T], size: int) -> list[_T]:
    return rng.sample(items, min(size, len(items)))
