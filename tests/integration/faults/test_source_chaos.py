"""One slow source and one broken source never take the gateway down.

Under concurrent requests that read three agencies at once: the population database
answers only after 10 s (a fault proxy delays it), the business registry answers 500
to everything (an app that does only that), the land registry is well. The slow
source's fields come back `SOURCE_TIMEOUT` at its own timeout (and fail at once when
enough timeouts opened its breaker too), and its connections are closed; the broken
source's breaker opens and the gateway stops calling it until one trial call goes
(half-open); the land registry's fields resolve in every answer, and every request is
recorded. Order and outcome are asserted, not timings; only a guard of 30 s against
hangs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from conftest import HANG_GUARD, recorded
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

import sandbox

pytestmark = pytest.mark.own_database  # its own manifests are recorded

MANIFESTS = Path(sandbox.__file__).parent / "manifests"
RESET = 2.0
"""Seconds the business registry's breaker stays open before its trial call."""


class Broken:
    """A source that answers 500 to every call, and counts them."""

    def __init__(self) -> None:
        self.calls = 0

    def app(self) -> Starlette:
        async def fail(_request: Request) -> JSONResponse:
            self.calls += 1
            return JSONResponse({"error": "internal"}, status_code=500)

        app = Starlette()
        app.add_route("/{path:path}", fail, methods=["GET", "POST"])
        return app


def _manifests(folder: Path) -> Path:
    """The sandbox manifests, the population's timeout 1 s and a quick breaker."""
    folder.mkdir()
    for path in MANIFESTS.glob("*.yaml"):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        if document["name"] == "population":
            document["timeout_seconds"] = 1.0
            document["retries"] = 0
        if document["name"] == "business":
            document["breaker"] = {"failures": 3, "reset_seconds": RESET}
        (folder / path.name).write_text(yaml.safe_dump(document, allow_unicode=True))
    return folder


def _codes(body: dict[str, object]) -> dict[str, str]:
    errors = body.get("errors") or []
    assert isinstance(errors, list)
    return {e["path"][0]: e["extensions"]["code"] for e in errors}


async def test_a_slow_and_a_broken_source_leave_the_others_serving(
    gateway_factory, faults, start_server, dataset, place, tmp_path
) -> None:
    broken = Broken()
    broken_url = start_server(broken.app()).url
    population, delay = faults.to(gateway_factory._base["connector_urls"]["population"])
    delay.delay(10.0)
    gateway = gateway_factory.start(
        connectors_dir=_manifests(tmp_path / "connectors"),
        connector_urls={"population": population, "business": broken_url},
    )
    person = dataset.sample.citizens[0]
    enterprise = dataset.sample.businesses[0].ma_so_doanh_nghiep
    query = (
        f'{{ citizen(personalId: "{person}") {{ fullName }} '
        f'business(enterpriseCode: "{enterprise}") {{ name }} '
        f'landParcels(holder: "{person}") {{ parcelId }} }}'
    )

    async def ask(client: httpx.AsyncClient) -> httpx.Response:
        return await asyncio.wait_for(
            client.post(
                "/graphql",
                json={"query": query},
                headers={"Accept": "application/graphql-response+json"},
            ),
            HANG_GUARD,
        )

    answers: list[httpx.Response] = []
    async with gateway.client() as client:
        # Enough failures, under concurrent load, to open the business registry's breaker.
        answers += await asyncio.gather(*(ask(client) for _ in range(6)))
        opened_after = broken.calls
        # While it is open: the broken source is not called at all.
        answers += await asyncio.gather(*(ask(client) for _ in range(8)))
        while_open = broken.calls - opened_after
        # After the reset time, one trial call goes (it fails: open again).
        await asyncio.sleep(RESET + 0.2)
        answers += [await ask(client)]
        trial = broken.calls - opened_after
        answers += await asyncio.gather(*(ask(client) for _ in range(4)))
        after_trial = broken.calls - opened_after
    # The slow source's calls were given up at their timeout and their connections
    # closed by the gateway, not left open to the source (no call there ever finished,
    # so no connection is idle in the pool either).
    assert delay.connections > 0
    for _ in range(50):
        if delay.open_clients == 0:
            break
        await asyncio.sleep(0.1)
    assert delay.open_clients == 0

    assert opened_after >= 3
    assert while_open == 0
    assert trial == 1
    assert after_trial == 1
    for index, response in enumerate(answers):
        assert response.status_code == 200, response.text
        body = orjson.loads(response.content)
        codes = _codes(body)
        # The slow source times out at its own timeout; its breaker, too, opens after
        # enough timeouts, and then its fields fail at once.
        first_wave = index < 6
        assert codes["citizen"] in (
            {"SOURCE_TIMEOUT"} if first_wave else {"SOURCE_TIMEOUT", "SOURCE_UNAVAILABLE"}
        ), body
        assert codes["business"] == "SOURCE_UNAVAILABLE", body
        assert "landParcels" not in codes, body
        assert body["data"]["landParcels"], body  # the land registry answered
    ids = [r.headers["x-request-id"] for r in answers]
    assert await recorded(place.database_url, ids) == set(ids)
