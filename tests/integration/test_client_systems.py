"""Agencies register their own case-handling systems and keys; an operator approves.

An agency admin submits a system, keys, revocations and a JWKS URL through
`/admin/client-changes`; nothing takes effect until a platform operator who did not
submit the change approves it, and then on the system's next request. A system that
publishes its keys is read over real HTTP from a key set served on loopback.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from joserfc.jwk import OKPKey
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.integration.conftest import AUDIENCE, ServerThread, Signer

RESIDENCE = "1.004222"
PLATFORM = "VN/GOV/BCA"


def _org() -> str:
    return f"VN/GOV/T{uuid.uuid4().hex[:8]}"


def _key(kid: str) -> tuple[OKPKey, dict[str, Any]]:
    key = OKPKey.generate_key("Ed25519")
    return key, {**key.as_dict(private=False), "kid": kid}


async def _lookup(gateway, signer: Signer, person: str) -> httpx.Response:
    return await gateway.post(
        f'{{ citizen(personalId: "{person}") {{ fullName }} }}',
        signer=signer,
        procedure=RESIDENCE,
    )


class Agency:
    """An agency's admin and the platform's operator, talking to one gateway."""

    def __init__(self, gateway, sign_in, org: str) -> None:
        self.gateway, self.sign_in, self.org = gateway, sign_in, org

    async def submit(self, *, expect: int = 201, sub: str = "admin-a", **body: Any) -> dict:
        admin = await self.sign_in.staff("agency_admin", org=self.org, sub=sub)
        async with self.gateway.client(auth=None) as http:
            done = await http.post("/admin/client-changes", json=body, headers=admin)
        assert done.status_code == expect, done.text
        return done.json()

    async def decide(
        self, change: dict, verb: str = "approve", *, sub: str = "platform-op", expect: int = 200
    ) -> dict:
        operator = await self.sign_in.staff("operator", org=PLATFORM, sub=sub)
        body = {"reason": "not this key"} if verb == "reject" else None
        async with self.gateway.client(auth=None) as http:
            done = await http.post(
                f"/admin/client-changes/{change['id']}/{verb}", json=body, headers=operator
            )
        assert done.status_code == expect, done.text
        return done.json()

    async def endpoints(self, *endpoints: str) -> None:
        operator = await self.sign_in.staff("operator", org=PLATFORM, sub="platform-op")
        async with self.gateway.client(auth=None) as http:
            done = await http.put(
                f"/admin/authority/{self.org}",
                json={"fields": [], "endpoints": list(endpoints)},
                headers=operator,
            )
        assert done.status_code == 200, done.text


async def test_a_system_and_its_keys_serve_once_another_person_approves_them(
    gateway_factory, sign_in, dataset
) -> None:
    gateway = gateway_factory(connectors_allow_loopback=True)
    agency = Agency(gateway, sign_in, _org())
    system = f"{agency.org}/mot-cua"
    person = dataset.sample.citizens[0]
    first, first_jwk = _key("k1")
    second, second_jwk = _key("k2")

    registered = await agency.submit(
        client=system, action="register", name="Một cửa", agencyKinds=["commune_police"]
    )
    assert registered["status"] == "pending"
    keyed = await agency.submit(client=system, action="add_key", jwk=first_jwk, expect=404)
    assert keyed["code"] == "NOT_FOUND"  # no key before the system is approved
    # Four eyes: the same person signed in as an operator cannot approve it.
    refused = await agency.decide(registered, sub="admin-a", expect=403)
    assert refused["detail"]["reason"] == "submitter"
    # An operator of another organisation is no platform operator.
    other = await sign_in.staff("operator", org=agency.org, sub="op-b")
    async with gateway.client(auth=None) as http:
        done = await http.post(f"/admin/client-changes/{registered['id']}/approve", headers=other)
    assert done.status_code == 403
    approved = await agency.decide(registered)
    assert approved["status"] == "approved"
    assert approved["decidedBy"] == "platform-op"
    again = await agency.decide(registered, expect=409)
    assert again["code"] == "CONFLICT"

    as_first = Signer(system, first, "k1", AUDIENCE)
    assert (await _lookup(gateway, as_first, person)).status_code == 401  # no key yet
    added = await agency.submit(client=system, action="add_key", jwk=first_jwk)
    assert added["detail"]["kid"] == "k1"
    assert "d" not in added["detail"]["jwk"]
    assert (await _lookup(gateway, as_first, person)).status_code == 401  # pending
    await agency.decide(added)
    served = await _lookup(gateway, as_first, person)
    assert served.status_code == 200, served.text
    assert served.json()["data"]["citizen"]["fullName"]

    # Rotation: a second key next to the first, then the first revoked.
    await agency.decide(await agency.submit(client=system, action="add_key", jwk=second_jwk))
    as_second = Signer(system, second, "k2", AUDIENCE)
    assert (await _lookup(gateway, as_second, person)).status_code == 200
    revocation = await agency.submit(client=system, action="revoke_key", kid="k1")
    assert (await _lookup(gateway, as_first, person)).status_code == 200  # until approved
    await agency.decide(revocation)
    refused_after = await _lookup(gateway, as_first, person)
    assert refused_after.status_code == 401
    assert refused_after.json()["code"] == "BAD_SIGNATURE"
    assert (await _lookup(gateway, as_second, person)).status_code == 200

    # A rejected change applies nothing, and says why.
    third, third_jwk = _key("k3")
    rejected = await agency.decide(
        await agency.submit(client=system, action="add_key", jwk=third_jwk), "reject"
    )
    assert rejected["status"] == "rejected"
    assert rejected["reason"] == "not this key"
    assert (
        await _lookup(gateway, Signer(system, third, "k3", AUDIENCE), person)
    ).status_code == 401

    # The agency sees its own changes, another agency none of them.
    admin = await sign_in.staff("agency_admin", org=agency.org, sub="admin-a")
    stranger = await sign_in.staff("agency_admin", org=_org(), sub="admin-z")
    async with gateway.client(auth=None) as http:
        own = (await http.get("/admin/client-changes", headers=admin)).json()["changes"]
        theirs = (await http.get("/admin/client-changes", headers=stranger)).json()["changes"]
        hidden = await http.get(f"/admin/client-changes/{registered['id']}", headers=stranger)
        events = await http.get(
            "/audit/events", params={"type": "admin"}, headers=await sign_in.staff("auditor")
        )
    assert len(own) == 5  # the refused submission was never stored
    assert {c["action"] for c in own} == {"register", "add_key", "revoke_key"}
    assert not theirs
    assert hidden.status_code == 403
    actions = [
        e["envelope"]["action"]
        for e in events.json()["events"]
        if e["envelope"].get("client") == system
    ]
    for action in (
        "client_change_submitted",
        "client_registered",
        "key_added",
        "key_revoked",
        "client_change_rejected",
    ):
        assert action in actions


async def test_an_agency_changes_only_systems_under_it_and_only_well_formed_ones(
    gateway_factory, sign_in
) -> None:
    gateway = gateway_factory(connectors_allow_loopback=True)
    agency = Agency(gateway, sign_in, _org())
    outside = await agency.submit(
        client="VN/GOV/BCA/he-thong",
        action="register",
        name="x",
        agencyKinds=["commune_police"],
        expect=403,
    )
    assert outside["code"] == "FORBIDDEN"
    malformed = await agency.submit(
        client=f"{agency.org}/a b",
        action="register",
        name="x",
        agencyKinds=["commune_police"],
        expect=400,
    )
    assert malformed["code"] == "INVALID_ARGUMENT"
    kinds = await agency.submit(
        client=f"{agency.org}/x", action="register", name="x", agencyKinds=["emperor"], expect=400
    )
    assert kinds["detail"]["unknown"] == ["emperor"]
    private = OKPKey.generate_key("Ed25519").as_dict(private=True)
    system = f"{agency.org}/he-thong"
    await agency.decide(
        await agency.submit(
            client=system, action="register", name="Hệ thống", agencyKinds=["commune_police"]
        )
    )
    leaked = await agency.submit(client=system, action="add_key", jwk=private, expect=400)
    assert "private" in leaked["message"]
    unknown = await agency.submit(client=system, action="revoke_key", kid="nope", expect=404)
    assert unknown["code"] == "NOT_FOUND"
    nowhere = await agency.submit(
        client=system, action="jwks_url", jwksUrl="https://keys.example.vn/jwks", expect=400
    )
    assert "endpoints" in nowhere["message"]
    wrong = await agency.submit(client=system, action="teleport", expect=400)
    assert wrong["code"] == "INVALID_ARGUMENT"


class KeySet:
    """A JWKS served over HTTP on loopback, whose keys a test changes."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.reads = 0

        async def jwks(_request: Any) -> JSONResponse:
            self.reads += 1
            return JSONResponse({"keys": self.keys})

        self.server = ServerThread(Starlette(routes=[Route("/jwks.json", jwks)])).start()
        self.url = f"{self.server.url}/jwks.json"


@pytest.fixture
def key_set():
    served = KeySet()
    yield served
    served.server.stop()


async def test_a_system_that_publishes_its_keys_is_read_from_its_key_set(
    gateway_factory, sign_in, dataset, key_set
) -> None:
    gateway = gateway_factory(
        connectors_allow_loopback=True,
        clients_jwks_ttl_seconds=0.5,
        clients_jwks_refetch_seconds=0,
    )
    agency = Agency(gateway, sign_in, _org())
    await agency.endpoints("127.0.0.1")
    system = f"{agency.org}/ho-tich"
    person = dataset.sample.citizens[1]
    first, first_jwk = _key("pub-1")
    second, second_jwk = _key("pub-2")
    key_set.keys = [first_jwk]
    await agency.decide(
        await agency.submit(
            client=system,
            action="register",
            name="Hộ tịch",
            agencyKinds=["commune_police"],
            jwksUrl=key_set.url,
        )
    )
    as_first = Signer(system, first, "pub-1", AUDIENCE)
    served = await _lookup(gateway, as_first, person)
    assert served.status_code == 200, served.text
    # A key just published is found on the next request that names it.
    key_set.keys = [first_jwk, second_jwk]
    as_second = Signer(system, second, "pub-2", AUDIENCE)
    assert (await _lookup(gateway, as_second, person)).status_code == 200
    # Revoked at the gateway: refused at once, though the set still holds it.
    await agency.decide(await agency.submit(client=system, action="revoke_key", kid="pub-2"))
    refused = await _lookup(gateway, as_second, person)
    assert refused.status_code == 401
    # A key the agency stops publishing stops working once the set is read again.
    key_set.keys = [second_jwk]
    await asyncio.sleep(0.7)
    withdrawn = await _lookup(gateway, as_first, person)
    assert withdrawn.status_code == 401
    assert withdrawn.json()["code"] == "BAD_SIGNATURE"
    # Endpoints taken from the agency take its published keys with them.
    third, third_jwk = _key("pub-3")
    key_set.keys = [second_jwk, third_jwk]
    as_third = Signer(system, third, "pub-3", AUDIENCE)
    assert (await _lookup(gateway, as_third, person)).status_code == 200
    await agency.endpoints("keys.example.vn")
    await asyncio.sleep(0.7)
    assert (await _lookup(gateway, as_third, person)).status_code == 401
    await agency.endpoints("127.0.0.1")
    await asyncio.sleep(0.7)
    assert (await _lookup(gateway, as_third, person)).status_code == 200
    # A made-up key never works.
    stranger, _ = _key("pub-9")
    assert (
        await _lookup(gateway, Signer(system, stranger, "pub-9", AUDIENCE), person)
    ).status_code == 401
