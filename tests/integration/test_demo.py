"""`gateway demo` as a newcomer runs it: it answers the printed query, and Ctrl-C stops all."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from tests.integration.conftest import free_port


def _children(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(p) for p in out.stdout.split()]


def test_demo_answers_its_query_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    ports = [free_port() for _ in range(9)]
    output = tmp_path / "demo.out"
    with output.open("wb") as sink:
        demo = subprocess.Popen(
            [
                sys.executable, "-m", "gateway", "demo", "--citizens", "1500",
                "--port", str(ports[0]), "--population-port", str(ports[1]),
                "--business-port", str(ports[2]), "--issuer-port", str(ports[3]),
                "--insurance-port", str(ports[4]), "--civil-port", str(ports[5]),
                "--dossiers-port", str(ports[6]), "--witness-port", str(ports[7]),
                "--notify-port", str(ports[8]),
            ],
            cwd=tmp_path,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while "Press Ctrl-C" not in output.read_text() and time.monotonic() < deadline:
                assert demo.poll() is None, output.read_text()
                time.sleep(0.2)
            text = output.read_text()
            assert "Press Ctrl-C" in text, text
            children = _children(demo.pid)
            assert len(children) == 9
            # The sandbox notification channel runs, and the gateway sends to it.
            assert f"Notifications    http://127.0.0.1:{ports[8]} " in text
            channel = httpx.get(f"http://127.0.0.1:{ports[8]}/")
            assert "Kênh thông báo (sandbox)" in channel.text
            found = re.search(r'citizen\(personalId: "(\d{12})"\)', text)
            assert found, text
            personal_id = found.group(1)
            # The printed query's case is a real dossier: open, of the demo's procedure,
            # received by the demo's organisation, naming the citizen.
            case = re.search(r"--case (\S+) ", text)
            assert case, text
            dossier = httpx.get(f"http://127.0.0.1:{ports[6]}/v1/ho-so/{case.group(1)}").json()
            assert dossier["ma_thu_tuc"] == "1.004222"
            assert dossier["co_quan_tiep_nhan"] == "VN/GOV/DEMO"
            assert dossier["trang_thai"] in ("DA_TIEP_NHAN", "DANG_XU_LY")
            assert personal_id in [p["ma_dinh_danh"] for p in dossier["nguoi_lien_quan"]]
            source = httpx.get(f"http://127.0.0.1:{ports[1]}/v1/cong-dan/{personal_id}").json()
            assert f'"fullName": "{source["ho_ten"]}"' in text
            # The prefill avoids the identity card: its fields come from the population
            # database; and the proof of lawful dwelling: the land registry, a SQLite
            # database the demo wrote, shows the citizen's parcel.
            assert "Papers the applicant no longer brings:" in text
            avoided = text.split("no longer brings:")[1].split("Papers still needed:")[0]
            assert "Identity card" in avoided
            assert "Proof of lawful dwelling (land-use certificate)" in avoided, text
            # A married landholder's land-use right transfer: the parcel and its holders
            # (sql), the spouse (rest), the marriage certificate, verified (graphql).
            transfer = text.split("land-use right transfer registration (1.013831)")[1]
            transfer = transfer.split("Every read")[0]
            assert 'marriage_certificate_signature: ["VERIFIED"]' in transfer, transfer
            assert 'marriage_certificate_number: ["KH-' in transfer, transfer
            assert "parcel_holders: [" in transfer, transfer
            assert "spouse_full_name: " in transfer, transfer
            avoided = transfer.split("no longer brings:")[1].split("Papers still needed:")[0]
            assert "Marriage certificate (certified copy)" in avoided, transfer
            assert "Land-use right certificate" in avoided, transfer
            land = (tmp_path / "var" / "land.db").resolve()
            assert land.exists()
            assert f"Land registry    {land} (SQLite" in text
            gateway = f"http://127.0.0.1:{ports[0]}"
            query = {"query": f'{{ citizen(personalId: "{personal_id}") {{ birthDate }} }}'}
            unsigned = httpx.post(f"{gateway}/graphql", json=query)
            assert unsigned.status_code == 401
            body = tmp_path / "body.json"
            body.write_bytes(json.dumps(query).encode())
            token = subprocess.run(
                [
                    sys.executable, "-m", "gateway", "token", "--client",
                    "VN/GOV/DEMO/query-page", "--procedure", "1.004222", "--case", case.group(1),
                    "--officer", "o-1", "--subject", personal_id, "--body", str(body),
                ],
                cwd=tmp_path,
                env={**os.environ, "GATEWAY_ORIGIN": gateway},
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()  # fmt: skip
            answer = httpx.post(
                f"{gateway}/graphql",
                content=body.read_bytes(),
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            ).json()
            assert answer["data"] == {"citizen": {"birthDate": source["ngay_sinh"]}}
            assert answer["extensions"]["provenance"]["citizen.birthDate"]["source"] == "population"
            page = httpx.get(f"{gateway}/graphql", headers={"Accept": "text/html"})
            assert personal_id in page.text
            assert (tmp_path / "var" / "gateway.db").exists()
            # The receipt and the checkpoint are printed; the log verifies, live.
            assert '"leafHash"' in text
            assert f"127.0.0.1:{ports[0]}/log\n" in text
            audit = subprocess.run(
                [sys.executable, "-m", "gateway", "audit", "verify"],
                cwd=tmp_path,
                env={**os.environ, "GATEWAY_ORIGIN": gateway},
                capture_output=True,
                text=True,
                check=False,
            )
            assert audit.returncode == 0, audit.stderr
            assert "the log verifies" in audit.stdout
            # The printed checkpoint carries the sandbox witness's cosignature, and the
            # public log verifies against the witness policy the demo wrote.
            assert "\u2014 witness.sandbox.lienthong.test/w1 " in text
            public = subprocess.run(
                [
                    sys.executable, "-m", "gateway", "audit", "verify", "--url", gateway,
                    "--witness-policy", str(tmp_path / "var" / "witness-policy.txt"),
                ],
                capture_output=True,
                text=True,
                check=False,
            )  # fmt: skip
            assert public.returncode == 0, public.stderr
            assert "cosigned by 1 of the 1 witnesses" in public.stdout
            # Each console is printed with the sign-in of its role; the agency admin's
            # manifest is written, and the agency may submit it as printed.
            for path, role in (
                ("/kiem-tra", "auditor"),
                ("/van-hanh", "operator"),
                ("/co-quan", "agency_admin"),
            ):
                assert f"{gateway}{path}" in text, text
                assert f"role {role}" in text, text
                assert httpx.get(f"{gateway}{path}").status_code == 303
            printed = re.search(r"a manifest to submit: (\S+)", text)
            assert printed, text
            manifest = yaml.safe_load((tmp_path / printed.group(1)).read_text())
            issuer_url = re.search(
                r"\(dossier registry\), \S+ \(witness\), (\S+) \(sign-in\)", text
            )
            assert issuer_url, text
            staff = httpx.post(
                f"{issuer_url.group(1)}/demo/staff-login",
                json={"sub": "admin-1", "roles": ["agency_admin"], "org": "VN/GOV/BNNMT"},
            ).json()["access_token"]
            submitted = httpx.post(
                f"{gateway}/admin/connectors",
                json={"manifest": manifest},
                headers={"Authorization": f"Bearer {staff}"},
            )
            assert submitted.status_code == 201, submitted.text
            assert list((tmp_path / "var" / "keys" / "receipts").glob("*.pem"))
            # The citizen signs in as printed, sees the demo's reads and proves one.
            issuer = re.search(r"citizen token --issuer (\S+) --personal-id", text)
            assert issuer, text
            citizen = subprocess.run(
                [
                    sys.executable, "-m", "gateway", "citizen", "token",
                    "--issuer", issuer.group(1), "--personal-id", personal_id,
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()  # fmt: skip
            signed_in = {"Authorization": f"Bearer {citizen}"}
            accesses = httpx.get(f"{gateway}/me/accesses", headers=signed_in).json()["accesses"]
            # (The married landholder of the transfer may be the same citizen.)
            assert "1.004222" in {a["procedure"]["code"] for a in accesses}
            logged = next(a for a in accesses if a["inLog"])
            receipt = httpx.get(f"{gateway}{logged['receipt']}", headers=signed_in)
            assert receipt.status_code == 200, receipt.text
            (tmp_path / "receipt.tlog-proof").write_text(receipt.text)
            proven = subprocess.run(
                [sys.executable, "-m", "gateway", "audit", "verify-proof", "receipt.tlog-proof"],
                cwd=tmp_path,
                env={**os.environ, "GATEWAY_ORIGIN": gateway},
                capture_output=True,
                text=True,
                check=False,
            )
            assert proven.returncode == 0, proven.stderr
            assert "the proof verifies" in proven.stdout
        finally:
            demo.send_signal(signal.SIGINT)
            status = demo.wait(timeout=30)
    assert status == 0, output.read_text()
    # The demo waited for its children: none is left running or unreaped.
    assert [pid for pid in children if Path(f"/proc/{pid}").exists()] == []
