"""The sandbox apps over real HTTP: uvicorn in a thread, and ``python -m sandbox``."""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from sandbox import Dataset, SandboxSettings, business, generate, population
from tests.integration.conftest import free_port

REPO = Path(__file__).resolve().parents[3]
XROAD = {
    "X-Road-Client": "VN/GOV/000.00.00.H29/dichvucong",
    "X-Road-Id": "8f2b1c4e-0000-4000-8000-000000000002",
    "X-Road-UserId": "VN:canbo-0002",
    "X-Road-Issue": "1.004222/HS-2025-000456",
}


@contextlib.contextmanager
def _serve(app: FastAPI) -> Iterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, access_log=False, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="sandbox-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive(), "server thread died during start-up"
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        assert not thread.is_alive(), "server did not stop"


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(SandboxSettings(citizens=400))


def test_population_over_real_http(dataset: Dataset) -> None:
    settings = SandboxSettings(citizens=400, max_batch=20)
    with (
        _serve(population.create_app(settings, dataset)) as base,
        httpx.Client(base_url=base, headers=XROAD, timeout=10) as client,
    ):
        assert client.get("/healthz").json() == {"status": "ok", "records": 400}
        sample = client.get("/_sandbox/sample").json()
        pid = sample["citizens"][0]
        one = client.get(f"/v1/cong-dan/{pid}", params={"truong": "ho_ten,noi_thuong_tru"})
        assert one.status_code == 200
        assert set(one.json()) == {"so_dinh_danh", "ho_ten", "noi_thuong_tru"}
        batch = client.post(
            "/v1/cong-dan/tra-cuu", json={"danh_sach": sample["citizens"], "truong": None}
        )
        assert [r["so_dinh_danh"] for r in batch.json()["ket_qua"]] == sample["citizens"]
        too_many = client.post(
            "/v1/cong-dan/tra-cuu", json={"danh_sach": [pid] * 21, "truong": None}
        )
        assert too_many.status_code == 400
        assert too_many.json()["ma_loi"] == "VUOT_GIOI_HAN"
        household = client.get(f"/v1/ho-gia-dinh/{sample['households'][0]}")
        assert len(household.json()["thanh_vien"]) >= 3
        stats = client.get("/_sandbox/stats").json()
        assert stats["calls"]["cong_dan.get"] == 1
        assert stats["calls"]["cong_dan.batch"] == 2
        assert stats["calls"]["ho_gia_dinh.get"] == 1
        assert stats["ids_requested"] == 1 + len(sample["citizens"]) + 21 + 1
        assert stats["fields_requested"] == {"ho_ten": 1, "noi_thuong_tru": 1}


def test_business_over_real_http(dataset: Dataset) -> None:
    with (
        _serve(business.create_app(SandboxSettings(citizens=400), dataset)) as base,
        httpx.Client(base_url=base, headers=XROAD, timeout=10) as client,
    ):
        entry = client.get("/_sandbox/sample").json()["businesses"][0]
        record = client.get(f"/v1/doanh-nghiep/{entry['ma_so_doanh_nghiep']}").json()
        representative = record["nguoi_dai_dien_phap_luat"]["so_dinh_danh"]
        assert representative == entry["so_dinh_danh_nguoi_dai_dien"]
        assert client.get("/v1/doanh-nghiep/0100109107").json()["ma_loi"] == "SAI_DINH_DANG"


def test_cli_serves_and_logs_no_personal_id() -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "population", "--port", str(port), "--citizens", "300"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    asked: list[str] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, "sandbox exited during start-up"
                assert time.monotonic() < deadline, "sandbox did not start"
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/healthz").status_code == 200:
                        break
                time.sleep(0.1)
            asked = client.get("/_sandbox/sample").json()["citizens"]
            for pid in asked:
                assert client.get(f"/v1/cong-dan/{pid}", headers=XROAD).status_code == 200
            assert client.get("/v1/cong-dan/999999999999").status_code == 404
            client.post("/v1/cong-dan/tra-cuu", json={"danh_sach": [*asked, "bad-id"]})
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output
    assert "Uvicorn running" in output or "Application startup complete" in output
    assert asked
    for pid in [*asked, "999999999999", "bad-id"]:
        assert pid not in output
