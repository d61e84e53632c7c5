"""Two agencies register their databases through the admin API and go live without a
restart: the land registry (`sql`) and the insurance agency (`xroad`).

The gateway starts with neither: their fields are `NO_SOURCE`. Each agency's admin
submits its manifest; the same person signed in as an operator cannot approve it; a
platform operator does, and the running gateway serves the new fields, its provenance
naming each connector's version. A second version that drops a field goes live, then
a rollback to the first brings the field back; disabling the connector makes its fields
`NO_SOURCE` again.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import sandbox

pytestmark = pytest.mark.own_database  # `land` and `insurance` are recorded from files elsewhere

MANIFESTS = Path(sandbox.__file__).parent / "manifests"


def _query(person: str) -> str:
    return (
        f'{{ landParcels(holder: "{person}") {{ parcelId areaM2 }} '
        f'insurance(personalId: "{person}") {{ socialInsuranceNumber employer }} }}'
    )


def _manifest(name: str) -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load(
        (MANIFESTS / f"{name}.yaml").read_text(encoding="utf-8")
    )
    return manifest


def _database(url: str) -> str:
    """The absolute SQLite URL of the land registry's file."""
    return f"sqlite:///{Path(url.removeprefix('sqlite:///')).resolve()}"


def _codes(body: dict[str, Any]) -> dict[str, str]:
    return {e["path"][0]: e["extensions"]["code"] for e in body.get("errors") or []}


@pytest.fixture
def without_land_and_insurance(tmp_path: Path) -> Path:
    """A connectors folder holding every sandbox manifest but land and insurance."""
    folder = tmp_path / "connectors"
    folder.mkdir()
    for path in MANIFESTS.glob("*.yaml"):
        if path.stem not in ("land", "insurance"):
            shutil.copy(path, folder / path.name)
    return folder


async def test_two_agencies_register_their_databases_and_they_go_live_without_restart(
    gateway_factory: Any,
    sign_in: Any,
    dataset: Any,
    land_url: str,
    insurance_url: str,
    without_land_and_insurance: Path,
) -> None:
    gateway = gateway_factory.start(
        connectors_dir=without_land_and_insurance,
        connectors_allow_loopback=True,
        connector_urls={"land": None, "insurance": None},  # no such connectors yet
    )
    person = dataset.sample.citizens[0]
    before = await gateway.query(_query(person))
    assert _codes(before) == {"landParcels": "NO_SOURCE", "insurance": "NO_SOURCE"}, before

    platform = await sign_in.staff("operator", org=gateway.settings.platform_organisation)
    land_database = _database(land_url)
    agencies = {
        "land": (
            "VN/GOV/BNNMT",
            ["LandParcel.*"],
            [land_database],
            {"database": {"url": land_database}},
        ),
        "insurance": (
            "VN/GOV/BHXH",
            ["InsuranceRecord.*"],
            [httpx.URL(insurance_url).host],
            {"base_url": insurance_url},
        ),
    }
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15.0) as http:
        for name, (org, fields, endpoints, where) in agencies.items():
            manifest = _manifest(name)
            manifest.update(where)
            authority = await http.put(
                f"/admin/authority/{org}",
                json={"fields": fields, "endpoints": endpoints},
                headers=platform,
            )
            assert authority.status_code == 200, authority.text
            admin = await sign_in.staff("agency_admin", org=org, sub=f"{name}-admin")
            submitted = await http.post(
                "/admin/connectors", json={"manifest": manifest}, headers=admin
            )
            assert submitted.status_code == 201, submitted.text
            assert submitted.json()["status"] == "pending"
            # Four eyes: the submitter, even signed in as an operator, cannot approve.
            same = await sign_in.staff("operator", org=gateway.settings.platform_organisation,
                                       sub=f"{name}-admin")  # fmt: skip
            refused = await http.post(f"/admin/connectors/{name}/versions/1/approve", headers=same)
            assert refused.status_code == 403, refused.text
            pending = await gateway.query(_query(person))
            assert _codes(pending)[{"land": "landParcels"}.get(name, name)] == "NO_SOURCE"
            approved = await http.post(
                f"/admin/connectors/{name}/versions/1/approve", headers=platform
            )
            assert approved.status_code == 200, approved.text

        # The same running gateway serves both, each value naming its connector's version.
        live = await gateway.query(_query(person))
        assert "errors" not in live, live
        assert live["data"]["landParcels"], live
        assert live["data"]["insurance"]["socialInsuranceNumber"], live
        provenance = live["extensions"]["provenance"]
        assert provenance["landParcels.0.areaM2"]["source"] == "land"
        assert provenance["landParcels.0.areaM2"]["version"] == 1
        assert provenance["insurance.employer"] == {
            **provenance["insurance.employer"],
            "source": "insurance",
            "version": 1,
        }

        # Version 2 of the insurance connector no longer maps the employer.
        admin = await sign_in.staff("agency_admin", org="VN/GOV/BHXH", sub="insurance-admin")
        manifest = _manifest("insurance")
        manifest.update(base_url=insurance_url)
        del manifest["entities"]["InsuranceRecord"]["fields"]["employer"]
        second = await http.post("/admin/connectors", json={"manifest": manifest}, headers=admin)
        assert second.status_code == 201, second.text
        assert second.json()["version"] == 2
        done = await http.post("/admin/connectors/insurance/versions/2/approve", headers=platform)
        assert done.status_code == 200, done.text
        dropped = await gateway.query(_query(person))
        assert _codes(dropped) == {"insurance": "NO_SOURCE"}, dropped
        assert (
            dropped["extensions"]["provenance"]["insurance.socialInsuranceNumber"]["version"] == 2
        )

        # Rolling back is a submit and an approval: version 3, with version 1's manifest.
        back = await http.post(
            "/admin/connectors/insurance/rollback", json={"version": 1}, headers=admin
        )
        assert back.status_code in (200, 201), back.text
        assert back.json()["version"] == 3
        still = await gateway.query(_query(person))
        assert _codes(still) == {"insurance": "NO_SOURCE"}, still  # not before approval
        done = await http.post("/admin/connectors/insurance/versions/3/approve", headers=platform)
        assert done.status_code == 200, done.text
        restored = await gateway.query(_query(person))
        assert "errors" not in restored, restored
        assert restored["data"]["insurance"]["employer"] == live["data"]["insurance"]["employer"]
        assert restored["extensions"]["provenance"]["insurance.employer"]["version"] == 3

        # Disabled, the land registry's fields have no source again.
        land_admin = await sign_in.staff("agency_admin", org="VN/GOV/BNNMT", sub="land-admin")
        disabled = await http.post("/admin/connectors/land/disable", headers=land_admin)
        assert disabled.status_code == 200, disabled.text
    after = await gateway.query(_query(person))
    assert _codes(after) == {"landParcels": "NO_SOURCE"}, after
