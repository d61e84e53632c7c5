"""Reference population service (CSDLQG về dân cư): citizens and households."""

import re
from typing import Final

from fastapi import FastAPI

from sandbox._app import build_app
from sandbox._data import Dataset, generate
from sandbox._lookup import Collection
from sandbox._render import CITIZEN_FIELDS, HOUSEHOLD_FIELDS
from sandbox.config import SandboxSettings

_PERSONAL_ID: Final = re.compile(r"[0-9]{12}")
_HOUSEHOLD_ID: Final = re.compile(r"HO[0-9]{10}")


def _is_twelve_digits(value: str) -> bool:
    return _PERSONAL_ID.fullmatch(value) is not None


def _is_household_id(value: str) -> bool:
    return _HOUSEHOLD_ID.fullmatch(value) is not None


def create_app(settings: SandboxSettings, dataset: Dataset | None = None) -> FastAPI:
    """The population app; the dataset is generated from ``settings`` when not given."""
    data = dataset if dataset is not None else generate(settings)
    citizens = Collection(
        name="cong_dan",
        path="/v1/cong-dan",
        key_field="so_dinh_danh",
        fields=CITIZEN_FIELDS,
        records=data.citizens,
        is_valid_key=_is_twelve_digits,
        what="số định danh cá nhân (12 chữ số)",
    )
    households = Collection(
        name="ho_gia_dinh",
        path="/v1/ho-gia-dinh",
        key_field="ma_ho",
        fields=HOUSEHOLD_FIELDS,
        records=data.households,
        is_valid_key=_is_household_id,
        what="mã hộ (HO và 10 chữ số)",
    )
    return build_app(
        title="Sandbox: Cơ sở dữ liệu quốc gia về dân cư",
        settings=settings,
        collections=(citizens, households),
        records=len(data.citizens),
        sample=data.sample,
    )
