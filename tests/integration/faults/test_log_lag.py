"""While nothing can integrate, readiness and metrics show how old the oldest record is.

The log's lock is held from outside (as a stuck sequencer would), so records wait in
the queue: `/admin/readiness` reports the log degraded with the oldest record's age
beyond the merge delay, and the metrics show that age, while the gateway still records
and serves. Once the lock is let go, the queue empties and the age is back to zero.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import HANG_GUARD, post_lookup
from prometheus_client.parser import text_string_to_metric_families

from gateway.storage import create_engine

pytestmark = pytest.mark.own_database

MERGE_DELAY = 0.4


def _gauge(metrics: str, name: str) -> float:
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"{name} is not in the metrics")


async def test_a_held_log_shows_its_oldest_records_age_and_recovers(
    gateway_factory: Any, place: Any, dataset: Any, sign_in: Any
) -> None:
    gateway = gateway_factory.start(merge_delay=MERGE_DELAY)
    operator = await sign_in.staff("operator")
    await gateway.caught_up()
    holder = create_engine(place.database_url)
    try:
        async with gateway.client() as client, gateway.client(auth=None) as http:
            async with holder.connect() as conn, conn.begin():
                await conn.execute(sa.text("SELECT size FROM log_state WHERE id = 1 FOR UPDATE"))
                served = await post_lookup(client, str(dataset.sample.citizens[0]))
                assert served.status_code == 200, served.text  # recorded, and served
                async with asyncio.timeout(HANG_GUARD):
                    while True:
                        ready = (await http.get("/admin/readiness", headers=operator)).json()
                        if ready["log"]["lagSeconds"] > MERGE_DELAY:
                            break
                        await asyncio.sleep(0.1)
                assert ready["status"] == "ready"
                assert "log" in ready["degraded"]
                assert ready["log"]["queued"] >= 1
                metrics = (await http.get("/metrics", headers=operator)).text
                assert _gauge(metrics, "gateway_log_lag_seconds") > MERGE_DELAY
            # The lock let go: the sequencer integrates, and the age is back to zero.
            await gateway.caught_up()
            ready = (await http.get("/admin/readiness", headers=operator)).json()
            async with asyncio.timeout(HANG_GUARD):  # the sequencer's next pass finds none
                while True:
                    metrics = (await http.get("/metrics", headers=operator)).text
                    if _gauge(metrics, "gateway_log_oldest_queued_seconds") < MERGE_DELAY:
                        break
                    await asyncio.sleep(0.1)
        assert ready["log"]["queued"] == 0
        assert ready["log"]["lagSeconds"] == 0
        assert "log" not in ready["degraded"]
    finally:
        await holder.dispose()
