"""Reference business-registry service (đăng ký doanh nghiệp): enterprises by tax code."""

from fastapi import FastAPI

from sandbox._app import build_app
from sandbox._businesses import BUSINESS_FIELDS
from sandbox._data import Dataset, generate
from sandbox._identifiers import is_tax_code
from sandbox._lookup import Collection
from sandbox.config import SandboxSettings


def create_app(settings: SandboxSettings, dataset: Dataset | None = None) -> FastAPI:
    """The business app; the dataset is generated from ``settings`` when not given."""
    data = dataset if dataset is not None else generate(settings)
    businesses = Collection(
        name="doanh_nghiep",
        path="/v1/doanh-nghiep",
        key_field="ma_so_doanh_nghiep",
        fields=BUSINESS_FIELDS,
        records=data.businesses,
        is_valid_key=is_tax_code,
        what="mã số doanh nghiệp (10 chữ số hợp lệ, hoặc dạng chi nhánh -001 đến -999)",
    )
    return build_app(
        title="Sandbox: Cơ sở dữ liệu quốc gia về đăng ký doanh nghiệp",
        settings=settings,
        collections=(businesses,),
        records=len(data.businesses),
        sample=data.sample,
    )
