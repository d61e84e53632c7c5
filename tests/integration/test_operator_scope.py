"""Operators act for their organisation: only the platform's act on every client.

An operator's `org` claim (`VN/GOV/<org>`) scopes what it sees and changes to the
clients whose id is under it (`VN/GOV/<org>/...`); operators of the platform's
organisation (`GATEWAY_PLATFORM_ORG`; in development the sandbox's `VN/GOV/BCA`) act
on every client.
"""

from __future__ import annotations

import uuid

RESIDENCE = "1.004222"
HCM = "VN/GOV/UBND-HCM"


async def test_an_operator_of_another_organisation_cannot_suspend_a_client(
    gateway, another_client, sign_in
) -> None:
    police = await another_client("VN/GOV/CA-HN/cu-tru", ["commune_police"])
    own = await another_client(f"{HCM}/mot-cua", ["commune_peoples_committee"])
    # Same letters, another organisation: the org is matched whole, never as a prefix.
    lookalike = await another_client(f"{HCM}X/mot-cua", ["commune_peoples_committee"])
    operator = await sign_in.staff("operator", org=HCM, sub="op-hcm")
    async with gateway.client(auth=None) as http:
        for client in (police, lookalike):
            for action in ("suspend", "activate"):
                refused = await http.post(
                    f"/admin/clients/{client.client_id}/{action}", headers=operator
                )
                assert refused.status_code == 403, refused.text
                assert refused.json()["code"] == "FORBIDDEN"
        # Whether a client exists is not told to an operator it does not concern.
        missing = await http.post("/admin/clients/VN/GOV/CA-HN/none/suspend", headers=operator)
        assert missing.status_code == 403
        suspended = await http.post(f"/admin/clients/{own.client_id}/suspend", headers=operator)
        assert suspended.status_code == 200, suspended.text
        listed = await http.get("/admin/clients", headers=operator)
        everyone = await http.get("/admin/clients", headers=await sign_in.staff("operator"))
    assert suspended.json()["status"] == "suspended"
    ids = {c["id"] for c in listed.json()["clients"]}
    assert own.client_id in ids
    assert all(i.startswith(f"{HCM}/") for i in ids)
    statuses = {c["id"]: c["status"] for c in everyone.json()["clients"]}
    assert statuses[police.client_id] == statuses[lookalike.client_id] == "active"
    # The refusals changed nothing and wrote no admin record.
    report = await gateway.audit()
    assert report.ok, report.problem


async def test_a_platform_operator_can_suspend_any_client(gateway, another_client, sign_in):
    police = await another_client("VN/GOV/CA-HN/cu-tru", ["commune_police"])
    platform = await sign_in.staff("operator")  # VN/GOV/BCA: the platform in development
    async with gateway.client(auth=None) as http:
        suspended = await http.post(f"/admin/clients/{police.client_id}/suspend", headers=platform)
    assert suspended.status_code == 200, suspended.text
    assert suspended.json() == {"id": police.client_id, "status": "suspended"}


async def test_the_platform_organisation_is_a_setting(gateway_factory, another_client, sign_in):
    gateway = gateway_factory(platform_org="VN/GOV/BKHCN")
    police = await another_client("VN/GOV/CA-HN/cu-tru", ["commune_police"])
    async with gateway.client(auth=None) as http:
        bca = await sign_in.staff("operator")
        refused = await http.post(f"/admin/clients/{police.client_id}/suspend", headers=bca)
        platform = await sign_in.staff("operator", org="VN/GOV/BKHCN")
        done = await http.post(f"/admin/clients/{police.client_id}/suspend", headers=platform)
    assert refused.status_code == 403
    assert refused.json()["code"] == "FORBIDDEN"
    assert done.status_code == 200, done.text


async def test_an_operators_figures_are_of_its_organisation(
    gateway, another_client, sign_in, dataset
) -> None:
    tag = uuid.uuid4().hex[:8]
    own = await another_client(
        f"{HCM}/mot-cua", ["commune_peoples_committee", "commune_police"], f"UBND {tag}"
    )
    other = await another_client("VN/GOV/CA-HN/cu-tru", ["commune_police"], f"CA {tag}")
    person = dataset.sample.citizens[0]
    query = f'{{ citizen(personalId: "{person}") {{ fullName }} }}'
    for signer in (own, other):
        answer = await gateway.post(query, signer=signer, procedure=RESIDENCE)
        assert answer.status_code == 200, answer.text
    operator = await sign_in.staff("operator", org=HCM)
    async with gateway.client(auth=None) as http:
        mine = await http.get("/admin/stats", headers=operator)
        everyone = await http.get("/admin/stats", headers=await sign_in.staff("operator"))
        asked = await http.get(
            "/admin/stats", params={"organisation": f"CA {tag}"}, headers=operator
        )
    assert mine.status_code == 200, mine.text
    organisations = {r["organisation"] for r in mine.json()["rows"]}
    assert f"UBND {tag}" in organisations
    assert f"CA {tag}" not in organisations
    assert {f"UBND {tag}", f"CA {tag}"} <= {r["organisation"] for r in everyone.json()["rows"]}
    assert asked.json()["rows"] == []
