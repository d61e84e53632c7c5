"""Every change to the client registry commits with its `admin` record, or not at all.

Registering a client, adding a key and revoking one are as much a change of who may
read as a suspension: an insider who added a key to a client, read as it and revoked
the key would otherwise leave nothing in the access log.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from joserfc.jwk import OKPKey
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.admission import ClientRegistry
from gateway.errors import AuditUnavailable, Conflict, NotFound
from gateway.records import AdminRecorder, Event, admin_recorder, pseudonym
from gateway.storage import (
    client_keys,
    clients,
    event_personal,
    events,
    log_queue,
)

CLIENT = "VN/GOV/CA-HN/cu-tru"
KEY = b"k" * 32


def _record(operator: str = "op-1", org: str | None = "VN/GOV/BCA") -> AdminRecorder:
    return admin_recorder(
        pseudonym_key=KEY,
        policy_version="v1",
        operator=operator,
        operator_org=org,
        request_id="req-1",
    )


async def _admin_records(engine: AsyncEngine) -> list[dict[str, Any]]:
    """The envelopes of the admin events, oldest first, each also queued for the log."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(events.c.id, events.c.envelope, events.c.client_id)
                .where(events.c.type == "admin")
                .order_by(events.c.ts)
            )
        ).all()
        queued = set((await conn.execute(sa.select(log_queue.c.event_id))).scalars())
    assert {r.id for r in rows} <= queued, "every admin record is queued for the public log"
    assert all(r.client_id == CLIENT for r in rows)
    return [dict(r.envelope) for r in rows]


def _jwk() -> dict[str, Any]:
    return OKPKey.generate_key("Ed25519").as_dict(private=False)


async def test_registering_a_client_is_recorded(engine: AsyncEngine) -> None:
    await ClientRegistry(engine).add(
        CLIENT, name="Cư trú", organisation="CA HN", agency_kinds=["commune_police"],
        record=_record(),
    )  # fmt: skip
    [envelope] = await _admin_records(engine)
    assert envelope["action"] == envelope["outcome"] == "client_registered"
    assert envelope["client"] == CLIENT
    assert envelope["operator"] == pseudonym(KEY, "op-1")
    assert envelope["operatorOrg"] == "VN/GOV/BCA"
    assert "kid" not in envelope


async def test_adding_and_revoking_a_key_are_recorded_with_its_kid(engine: AsyncEngine) -> None:
    registry = ClientRegistry(engine)
    await registry.add(
        CLIENT, name="n", organisation="o", agency_kinds=["commune_police"], record=_record()
    )
    key = await registry.add_key(CLIENT, _jwk(), kid="ed-1", record=_record("op-2"))
    await registry.revoke_key(CLIENT, "ed-1", record=_record("op-3"))
    _, added, revoked = await _admin_records(engine)
    assert key.kid == "ed-1"
    assert (added["action"], added["kid"], added["client"]) == ("key_added", "ed-1", CLIENT)
    assert added["operator"] == pseudonym(KEY, "op-2")
    assert (revoked["action"], revoked["kid"]) == ("key_revoked", "ed-1")
    assert revoked["operator"] == pseudonym(KEY, "op-3")
    # The envelope names public identifiers only; the operator's id is in the personal part.
    assert set(added) - {
        "v", "id", "type", "ts", "requestId", "outcome", "policyVersion",
        "subjectCommitments", "personalHash",
    } == {"action", "client", "kid", "operator", "operatorOrg"}  # fmt: skip
    async with engine.connect() as conn:
        personal = (
            await conn.execute(
                sa.select(event_personal.c.personal).where(event_personal.c.event_id == added["id"])
            )
        ).scalar_one()
    assert personal == {"operator": "op-2"}


async def test_a_change_refused_writes_no_record(engine: AsyncEngine) -> None:
    registry = ClientRegistry(engine)
    await registry.add(
        CLIENT, name="n", organisation="o", agency_kinds=["commune_police"], record=_record()
    )
    await registry.add_key(CLIENT, _jwk(), kid="ed-1", record=_record())
    with pytest.raises(Conflict):
        await registry.add(
            CLIENT, name="n", organisation="o", agency_kinds=["commune_police"], record=_record()
        )
    with pytest.raises(Conflict):
        await registry.add_key(CLIENT, _jwk(), kid="ed-1", record=_record())
    with pytest.raises(NotFound):
        await registry.add_key("VN/GOV/CA-HN/none", _jwk(), record=_record())
    with pytest.raises(NotFound):
        await registry.revoke_key(CLIENT, "ed-2", record=_record())
    await registry.revoke_key(CLIENT, "ed-1", record=_record())
    await registry.revoke_key(CLIENT, "ed-1", record=_record())  # already revoked: no change
    actions = [e["action"] for e in await _admin_records(engine)]
    assert actions == ["client_registered", "key_added", "key_revoked"]


async def test_a_change_whose_record_cannot_be_written_does_not_happen(
    engine: AsyncEngine,
) -> None:
    registry = ClientRegistry(engine)
    await registry.add(
        CLIENT, name="n", organisation="o", agency_kinds=["commune_police"], record=_record()
    )
    [first] = await _admin_records(engine)

    def clashing(action: str, client_id: str, kid: str | None) -> Event:
        # An event whose id is already taken: its insert fails inside the transaction.
        event = _record()(action, client_id, kid)
        event.id = first["id"]
        return event

    with pytest.raises(AuditUnavailable):
        await registry.add_key(CLIENT, _jwk(), kid="ed-1", record=clashing)
    with pytest.raises(AuditUnavailable):
        await registry.add(
            "VN/GOV/CA-HN/other", name="n", organisation="o", agency_kinds=["commune_police"],
            record=clashing,
        )  # fmt: skip
    await registry.add_key(CLIENT, _jwk(), kid="ed-2", record=_record())
    with pytest.raises(AuditUnavailable):
        await registry.revoke_key(CLIENT, "ed-2", record=clashing)
    async with engine.connect() as conn:
        keys = dict((await conn.execute(sa.select(client_keys.c.kid, client_keys.c.status))).all())
        ids = set((await conn.execute(sa.select(clients.c.id))).scalars())
    assert keys == {"ed-2": "active"}
    assert ids == {CLIENT}
