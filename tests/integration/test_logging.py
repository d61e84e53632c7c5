"""The running `gateway serve` process writes JSON logs with request ids and no personal id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.integration.conftest import free_port

# A process of its own, with keys of its own: a database of its own too (SQLite is
# enough, the logs do not depend on the backend).
pytestmark = [
    pytest.mark.parametrize("backend", ["sqlite"], indirect=True),
    pytest.mark.own_database,
]


@pytest.fixture
def served(
    migrated,
    tmp_path,
    population_url,
    business_url,
    insurance_url,
    land_url,
    manifests,
    signer,
    test_catalogue,
):
    port = free_port()
    log_file = tmp_path / "gateway.log"
    env = {
        **os.environ,
        "GATEWAY_DATABASE_URL": migrated,
        "GATEWAY_KEYS_DIR": str(tmp_path / "keys"),
        "GATEWAY_CONNECTORS_DIR": str(manifests),
        "GATEWAY_CONNECTOR_URLS": json.dumps(
            {
                "population": population_url,
                "business": business_url,
                "insurance": insurance_url,
                "land": land_url,
            }
        ),
        "GATEWAY_PORT": str(port),
        "GATEWAY_ORIGIN": signer.audience,
        "GATEWAY_CATALOGUE_DIR": str(test_catalogue),
        "GATEWAY_LOG_LEVEL": "debug",
        "GATEWAY_LOG_JSON": "true",
    }
    with log_file.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert process.poll() is None, log_file.read_text()
                time.sleep(0.1)
            yield url, log_file
        finally:
            process.terminate()
            process.wait(timeout=15)


def test_logs_carry_request_ids_and_no_personal_ids(served, dataset, signing_auth) -> None:
    url, log_file = served
    ids = list(dataset.sample.citizens[:5])
    legacy = [r["so_cmnd"] for r in dataset.citizens.values() if r["so_cmnd"]][:3]
    with httpx.Client(base_url=url, timeout=10, auth=signing_auth) as client:
        for personal_id in ids:
            client.post(
                "/graphql",
                json={"query": f'{{ citizen(personalId: "{personal_id}") {{ legacyIdNumber }} }}'},
            )
            client.get(
                "/graphql",
                params={"query": f'{{ citizen(personalId: "{personal_id}") {{ fullName }} }}'},
            )
        client.post(
            "/graphql",
            json={
                "query": "query($ids: [String!]!) { citizens(personalIds: $ids) { fullName } }",
                "variables": {"ids": ids},
            },
        )
        client.post(
            "/graphql", json={"query": '{ citizen(personalId: "001999999999") { fullName } }'}
        )
        client.post("/graphql", json={"query": f'{{ citizen(personalId: "{ids[0]}"'})  # parse error
        client.get(f"/unknown/{ids[0]}")
    time.sleep(0.3)
    text = log_file.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]
    requests = [e for e in events if e.get("event") == "request"]
    assert len(requests) >= 2 * len(ids) + 4
    assert all(len(e["request_id"]) == 32 for e in requests)
    assert {e["route"] for e in requests} >= {"/graphql", "/readyz", "other"}
    assert [e["status"] for e in requests if e["route"] == "/graphql"].count(200) >= 2 * len(ids)
    for secret in [*ids, "001999999999", *legacy]:
        assert secret not in text
