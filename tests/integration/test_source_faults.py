"""Sources that are down or slow: their own fields fail, everything else resolves."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from sandbox import business, population

QUERY = """query($id: String!, $code: String!) {
  citizen(personalId: $id) { fullName birthDate }
  business(enterpriseCode: $code) { name legalRepresentative { fullName } }
}"""


def _variables(dataset) -> dict[str, str]:
    pair = dataset.sample.businesses[0]
    return {"id": pair.so_dinh_danh_nguoi_dai_dien, "code": pair.ma_so_doanh_nghiep}


async def test_business_source_stopped(
    gateway_factory, dataset, start_server, sandbox_settings
) -> None:
    server = start_server(business.create_app(sandbox_settings, dataset))
    gateway = gateway_factory(connector_urls={"business": server.url})
    server.stop()
    async with gateway.client() as client:
        response = await client.post(
            "/graphql",
            json={"query": QUERY, "variables": _variables(dataset)},
            headers={"Accept": "application/graphql-response+json"},
        )
    assert response.status_code == 200
    body = response.json()
    assert body["data"]["citizen"]["fullName"]
    assert body["data"]["citizen"]["birthDate"]
    assert body["data"]["business"] is None
    assert [
        (e["path"], e["extensions"]["code"], e["extensions"]["source"]) for e in body["errors"]
    ] == [(["business"], "SOURCE_UNAVAILABLE", "business")]


def _slow_manifests(manifests: Path, tmp_path: Path, timeout: float) -> Path:
    folder = tmp_path / "manifests"
    folder.mkdir()
    for path in manifests.glob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data.update(timeout_seconds=timeout, retries=0)
        (folder / path.name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return folder


@pytest.mark.own_database  # its manifests differ: they are recorded
async def test_slow_source_times_out_on_its_own_fields(
    gateway_factory, dataset, start_server, business_url, tmp_path, manifests, sandbox_settings
) -> None:
    slow = start_server(
        population.create_app(sandbox_settings.model_copy(update={"latency_ms": 1500}), dataset)
    )
    gateway = gateway_factory(
        connectors_dir=_slow_manifests(manifests, tmp_path, 0.3),
        connector_urls={"population": slow.url, "business": business_url},
    )
    body = await gateway.query(QUERY, **_variables(dataset))
    assert body["data"]["citizen"] is None
    assert body["data"]["business"]["name"]
    assert body["data"]["business"]["legalRepresentative"]["fullName"]
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        (["citizen"], "SOURCE_TIMEOUT")
    ]


@pytest.mark.own_database  # `degraded` would also list a log lagging behind other tests
async def test_readiness_reports_a_source_down_without_failing(
    gateway_factory, dataset, start_server, sandbox_settings, sign_in
) -> None:
    server = start_server(business.create_app(sandbox_settings, dataset))
    gateway = gateway_factory(connector_urls={"business": server.url})
    server.stop()
    await gateway.caught_up()  # the test client's registration, queued before it started
    operator = await sign_in.staff("operator")
    async with gateway.client() as client:
        # A health check of another source may time out on a loaded machine: asked
        # again, only the source that is down stays degraded.
        for _ in range(5):
            ready = await client.get("/admin/readiness", headers=operator)
            if ready.status_code != 200 or ready.json()["degraded"] == ["business"]:
                break
            await asyncio.sleep(0.5)
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["degraded"] == ["business"]
    assert body["connectors"]["population"]["ok"] is True
