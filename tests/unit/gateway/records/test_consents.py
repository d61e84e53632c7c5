"""The consent store against a migrated SQLite database: life cycle, records, signatures.

A consent is requested by a client, then approved or denied by its citizen, and an
approved one may be revoked; unanswered past its answer date, or approved past its
`validUntil`, it reads as EXPIRED. Every change commits with exactly one `consent`
event, or not at all. A grant is a detached JWS by the gateway's consent key over the
consent as approved, which `verify_signed` checks. `ClientConsentRequests` is what a
client's request reaches: its requests are recorded with actor `client`.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime
import shutil
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
import rfc8785
import sqlalchemy as sa
from joserfc import jws
from joserfc.jwk import OKPKey
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import AuditUnavailable, Conflict, InvalidArgument, NotFound
from gateway.records import (
    CONSENT_TYPE,
    ClientConsentRequests,
    ConsentStore,
    Event,
    Recorder,
    consent_commitment,
    consent_event,
    read_envelope,
    verify_signed,
)
from gateway.storage import consents, create_engine, events, subject_keys, upgrade
from keys import KeyRing, eddsa_allowed
from policies import Consent

AN, BINH = "079203001234", "001185000777"
CLIENT = "VN/GOV/CA-HCM/cu-tru"
OTHER = "VN/GOV/CA-HN/cu-tru"
RESIDENCE = "1.004222"
MARRIAGE = "1.000894"
DAY = datetime.timedelta(days=1)
MAX_VALIDITY = 365 * DAY


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


async def _migrate(path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database file, made once: each test gets a copy of its own."""
    path = tmp_path_factory.mktemp("migrated") / "gateway.db"
    asyncio.run(_migrate(path))
    return path


@pytest.fixture
async def engine(tmp_path: Path, migrated: Path) -> AsyncIterator[AsyncEngine]:
    copy = tmp_path / "gateway.db"
    shutil.copyfile(migrated, copy)
    engine = create_engine(f"sqlite+aiosqlite:///{copy}")
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def keyring(tmp_path_factory: pytest.TempPathFactory) -> KeyRing:
    return KeyRing.ensure(tmp_path_factory.mktemp("ring") / "keys")


@pytest.fixture
def store(engine: AsyncEngine, keyring: KeyRing) -> ConsentStore:
    return ConsentStore(engine, keyring)


def _by(action: str, actor: str = "citizen") -> Recorder:
    """The recorder of `action`: a `consent` event by `actor`."""

    def record(consent: Consent) -> Event:
        return consent_event(
            consent, action, request_id=f"req-{action}", policy_version="v-test", actor=actor
        )

    return record


async def _request(
    store: ConsentStore,
    *,
    subject: str = AN,
    consumer: str = CLIENT,
    procedure: str = RESIDENCE,
    fields: Sequence[str] = ("Citizen.phone",),
    valid_until: datetime.datetime | None = None,
) -> Consent:
    return await store.request(
        subject=subject,
        consumer=consumer,
        procedure=procedure,
        fields=fields,
        case="CASE-1",
        valid_until=valid_until or _now() + 30 * DAY,
        answer_within=7 * DAY,
        max_validity=MAX_VALIDITY,
        record=_by("requested", "client"),
    )


async def _active(store: ConsentStore, **options: Any) -> Consent:
    requested = await _request(store, **options)
    return await store.approve(requested.id, requested.subject, record=_by("approved"))


async def _events(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Every recorded event, oldest first: its row and its envelope."""
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(events).order_by(events.c.ts))).all()
    return [{**row._asdict(), "envelope": read_envelope(row.envelope)} for row in rows]


async def _consent_ref(engine: AsyncEngine, subject: str, consent_id: str) -> str:
    """What an envelope holds for a consent: its commitment under its giver's key."""
    async with engine.connect() as conn:
        key = await conn.scalar(
            sa.select(subject_keys.c.key).where(subject_keys.c.subject == subject)
        )
    return consent_commitment(bytes(key), consent_id)


async def _outcomes(engine: AsyncEngine) -> list[str]:
    return [e["outcome"] for e in await _events(engine)]


async def _set(engine: AsyncEngine, consent_id: str, **values: Any) -> None:
    """Move a stored consent (as time passing would)."""
    async with engine.begin() as conn:
        await conn.execute(consents.update().where(consents.c.id == consent_id).values(**values))


def _json(part: str) -> Any:
    return orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


# -- life cycle -------------------------------------------------------------------------


async def test_a_requested_consent_waits_for_its_citizen(
    store: ConsentStore, engine: AsyncEngine
) -> None:
    until = _now() + 30 * DAY
    consent = await _request(
        store, fields=["Citizen.phone", "Citizen.email", "Citizen.phone"], valid_until=until
    )
    assert consent.status == "REQUESTED"
    assert consent.fields == ("Citizen.email", "Citizen.phone")
    assert (consent.subject, consent.consumer, consent.procedure) == (AN, CLIENT, RESIDENCE)
    assert consent.valid_until == until
    assert consent.answer_by == consent.requested_at + 7 * DAY
    assert (consent.decided_at, consent.grant, consent.valid_from) == (None, None, None)
    assert await store.get(consent.id) == consent
    assert [c.id for c in await store.of_subject(AN)] == [consent.id]
    assert await store.active_for(consumer=CLIENT, procedure=RESIDENCE, subjects=[AN]) == []
    [event] = await _events(engine)
    assert (event["type"], event["outcome"]) == ("consent", "requested")
    # The envelope names the consent by a commitment under the citizen's key.
    assert event["envelope"]["consent"] == await _consent_ref(engine, AN, consent.id)
    assert consent.id not in str(event["envelope"])
    assert event["envelope"]["actor"] == "client"


async def test_an_approved_consent_is_in_force_until_revoked(
    store: ConsentStore, engine: AsyncEngine
) -> None:
    requested = await _request(store)
    approved = await store.approve(requested.id, AN, record=_by("approved"))
    assert approved.status == "ACTIVE"
    assert approved.decided_at is not None
    assert approved.valid_from == approved.decided_at
    assert approved.grant is not None
    [in_force] = await store.active_for(consumer=CLIENT, procedure=RESIDENCE, subjects=[AN])
    assert (in_force.id, in_force.subject, in_force.fields) == (
        requested.id,
        AN,
        frozenset({"Citizen.phone"}),
    )
    assert in_force.valid_until == requested.valid_until

    revoked = await store.revoke(requested.id, AN, record=_by("revoked"))
    assert revoked.status == "REVOKED"
    assert revoked.revoked_at is not None
    assert revoked.revocation is not None
    assert revoked.grant == approved.grant  # the grant is kept beside the revocation
    assert await store.active_for(consumer=CLIENT, procedure=RESIDENCE, subjects=[AN]) == []
    assert await _outcomes(engine) == ["requested", "approved", "revoked"]


async def test_a_denied_consent_is_never_in_force(store: ConsentStore, engine: AsyncEngine) -> None:
    requested = await _request(store)
    denied = await store.deny(requested.id, AN, record=_by("denied"))
    assert denied.status == "DENIED"
    assert denied.decided_at is not None
    assert denied.valid_from is None
    assert denied.grant is None
    assert await store.active_for(consumer=CLIENT, procedure=RESIDENCE, subjects=[AN]) == []
    assert await _outcomes(engine) == ["requested", "denied"]


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ("approve", "approve"),
        ("approve", "deny"),
        ("deny", "approve"),
        ("deny", "deny"),
        ("deny", "revoke"),
        (None, "revoke"),  # a consent never granted cannot be revoked
    ],
)
async def test_a_consent_is_answered_once(
    store: ConsentStore, engine: AsyncEngine, first: str | None, then: str
) -> None:
    requested = await _request(store)
    if first is not None:
        await getattr(store, first)(requested.id, AN, record=_by(first))
    before = await store.get(requested.id)
    recorded = await _outcomes(engine)
    with pytest.raises(Conflict) as caught:
        await getattr(store, then)(requested.id, AN, record=_by(then))
    assert caught.value.code == "CONFLICT"
    assert caught.value.detail["status"] == before.status
    assert await store.get(requested.id) == before
    assert await _outcomes(engine) == recorded


async def test_a_revoked_consent_cannot_be_revoked_again(
    store: ConsentStore, engine: AsyncEngine
) -> None:
    active = await _active(store)
    await store.revoke(active.id, AN, record=_by("revoked"))
    with pytest.raises(Conflict):
        await store.revoke(active.id, AN, record=_by("revoked"))
    assert await _outcomes(engine) == ["requested", "approved", "revoked"]


@pytest.mark.parametrize("action", ["approve", "deny", "revoke"])
async def test_another_citizens_consent_is_as_if_absent(
    store: ConsentStore, engine: AsyncEngine, action: str
) -> None:
    consent = await (_active(store) if action == "revoke" else _request(store))
    with pytest.raises(NotFound) as other:
        await getattr(store, action)(consent.id, BINH, record=_by(action))
    with pytest.raises(NotFound) as absent:
        await getattr(store, action)("0" * 32, BINH, record=_by(action))
    assert other.value.to_body() == absent.value.to_body()
    assert await store.get(consent.id) == consent
    assert len(await _events(engine)) == (2 if action == "revoke" else 1)


async def test_reading_an_absent_consent_is_not_found(store: ConsentStore) -> None:
    with pytest.raises(NotFound):
        await store.get("0" * 32)


@pytest.mark.parametrize(
    "valid_until",
    [
        pytest.param(lambda: datetime.datetime.now() + 30 * DAY, id="without-time-zone"),
        pytest.param(lambda: _now() + MAX_VALIDITY + DAY, id="beyond-max-validity"),
        pytest.param(lambda: _now() - DAY, id="in-the-past"),
    ],
)
async def test_a_request_needs_a_valid_until_within_the_max_validity(
    store: ConsentStore, engine: AsyncEngine, valid_until: Any
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await _request(store, valid_until=valid_until())
    assert caught.value.detail["argument"] == "validUntil"
    assert await store.of_subject(AN) == []
    assert await _events(engine) == []


async def test_a_valid_until_just_within_the_max_validity_is_accepted(
    store: ConsentStore,
) -> None:
    hanoi = datetime.timezone(datetime.timedelta(hours=7))
    until = (_now() + MAX_VALIDITY - datetime.timedelta(minutes=1)).astimezone(hanoi)
    consent = await _request(store, valid_until=until)
    assert consent.valid_until == until
    assert consent.valid_until.tzinfo == datetime.UTC


async def test_an_unanswered_request_past_its_answer_date_reads_as_expired(
    store: ConsentStore, engine: AsyncEngine
) -> None:
    requested = await _request(store)
    await _set(engine, requested.id, answer_by=_now() - datetime.timedelta(seconds=1))
    assert (await store.get(requested.id)).status == "EXPIRED"
    assert [c.id for c in await store.of_subject(AN, status="EXPIRED")] == [requested.id]
    assert await store.of_subject(AN, status="REQUESTED") == []
    with pytest.raises(Conflict):
        await store.approve(requested.id, AN, record=_by("approved"))
    assert await _outcomes(engine) == ["requested"]


async def test_an_approved_consent_past_valid_until_reads_as_expired_and_is_not_in_force(
    store: ConsentStore, engine: AsyncEngine
) -> None:
    active = await _active(store)
    await _set(engine, active.id, valid_until=_now() - datetime.timedelta(seconds=1))
    assert (await store.get(active.id)).status == "EXPIRED"
    assert await store.active_for(consumer=CLIENT, procedure=RESIDENCE, subjects=[AN]) == []
    with pytest.raises(Conflict):
        await store.revoke(active.id, AN, record=_by("revoked"))


async def test_in_force_are_only_active_consents_of_that_consumer_procedure_and_subjects(
    store: ConsentStore,
) -> None:
    an = await _active(store)
    binh = await _active(store, subject=BINH)
    await _active(store, consumer=OTHER)
    await _active(store, procedure=MARRIAGE)
    await _request(store)  # asked, not answered
    revoked = await _active(store)
    await store.revoke(revoked.id, AN, record=_by("revoked"))

    async def in_force(subjects: list[str]) -> set[str]:
        found = await store.active_for(consumer=CLIENT, procedure=RESIDENCE, subjects=subjects)
        assert all((c.consumer, c.procedure) == (CLIENT, RESIDENCE) for c in found)
        return {c.id for c in found}

    assert await in_force([AN]) == {an.id}
    assert await in_force([AN, BINH]) == {an.id, binh.id}
    assert await in_force(["036190000123"]) == set()
    assert await in_force([]) == set()


async def test_a_citizens_consents_are_listed_newest_first(store: ConsentStore) -> None:
    first = await _request(store)
    second = await _request(store, procedure=MARRIAGE)
    await _request(store, subject=BINH)
    assert [c.id for c in await store.of_subject(AN)] == [second.id, first.id]


# -- one event per change, or no change -------------------------------------------------


async def test_every_change_commits_with_exactly_one_consent_event(
    store: ConsentStore, engine: AsyncEngine
) -> None:
    requested = await _request(store)
    assert len(await _events(engine)) == 1
    await store.approve(requested.id, AN, record=_by("approved"))
    assert len(await _events(engine)) == 2
    await store.revoke(requested.id, AN, record=_by("revoked"))
    recorded = await _events(engine)
    assert len(recorded) == 3
    assert {e["type"] for e in recorded} == {"consent"}
    assert {e["envelope"]["consent"] for e in recorded} == {
        await _consent_ref(engine, AN, requested.id)
    }
    assert [e["request_id"] for e in recorded] == ["req-requested", "req-approved", "req-revoked"]
    assert {(e["client_id"], e["procedure"]) for e in recorded} == {(CLIENT, RESIDENCE)}
    # No personal data in the envelopes, nor the case the consent is bound to.
    assert AN not in orjson.dumps([e["envelope"] for e in recorded]).decode()
    assert "CASE-1" not in orjson.dumps([e["envelope"] for e in recorded]).decode()


async def test_a_change_that_cannot_be_recorded_does_not_happen(
    store: ConsentStore, engine: AsyncEngine
) -> None:
    requested = await _request(store)

    def unrecordable(consent: Consent) -> Event:
        return dataclasses.replace(_by("approved")(consent), type="not-a-type")

    with pytest.raises(AuditUnavailable):
        await store.approve(requested.id, AN, record=unrecordable)
    assert (await store.get(requested.id)).status == "REQUESTED"
    assert await _outcomes(engine) == ["requested"]


async def test_a_recorder_that_fails_leaves_the_consent_as_it_was(
    store: ConsentStore, engine: AsyncEngine
) -> None:
    requested = await _request(store)

    def failing(consent: Consent) -> Event:
        raise RuntimeError("recorder broken")

    with pytest.raises(RuntimeError):
        await store.deny(requested.id, AN, record=failing)
    assert (await store.get(requested.id)).status == "REQUESTED"
    with pytest.raises(RuntimeError):
        await store.request(
            subject=BINH,
            consumer=CLIENT,
            procedure=RESIDENCE,
            fields=["Citizen.phone"],
            case="CASE-2",
            valid_until=_now() + DAY,
            answer_within=DAY,
            max_validity=MAX_VALIDITY,
            record=failing,
        )
    assert await store.of_subject(BINH) == []
    assert await _outcomes(engine) == ["requested"]


# -- signatures -------------------------------------------------------------------------


async def test_a_grant_is_a_detached_jws_by_the_consent_key(
    store: ConsentStore, keyring: KeyRing
) -> None:
    active = await _active(store)
    assert active.grant is not None
    header, payload, signature = active.grant.split(".")
    assert payload == ""
    assert signature
    assert _json(header) == {
        "alg": "EdDSA",
        "kid": keyring.signing("consent").kid,
        "typ": CONSENT_TYPE,
    }


async def test_a_grant_verifies_over_the_consent_as_approved(
    store: ConsentStore, keyring: KeyRing
) -> None:
    active = await _active(store)
    assert active.grant is not None
    assert verify_signed(keyring, active.grant, active.artefact())
    # Read back later, from the database, it still verifies.
    stored = await store.get(active.id)
    assert stored.grant is not None
    assert verify_signed(keyring, stored.grant, stored.artefact())


@pytest.mark.parametrize(
    "change",
    [
        {"fields": ["Citizen.phone", "Citizen.email"]},
        {"subject": BINH},
        {"consumer": OTHER},
        {"procedure": MARRIAGE},
        {"validUntil": "2099-01-01T00:00:00Z"},
        {"validFrom": "2020-01-01T00:00:00Z"},
        {"case": "CASE-2"},
        {"id": "0" * 32},
        {"extra": True},
    ],
)
async def test_a_grant_fails_for_a_changed_consent(
    store: ConsentStore, keyring: KeyRing, change: dict[str, Any]
) -> None:
    active = await _active(store)
    assert active.grant is not None
    assert not verify_signed(keyring, active.grant, {**active.artefact(), **change})


async def test_a_grant_signs_the_case_the_consent_was_asked_under(
    store: ConsentStore, keyring: KeyRing
) -> None:
    active = await _active(store)
    assert active.artefact()["case"] == "CASE-1"
    assert active.grant is not None
    assert verify_signed(keyring, active.grant, active.artefact())
    [in_force] = await store.active_for(consumer=CLIENT, procedure=RESIDENCE, subjects=[AN])
    assert in_force.case == "CASE-1"


def _grant_without_case(keyring: KeyRing, artefact: dict[str, Any]) -> str:
    """A grant as the gateway signed them before the case was in the artefact."""
    key = keyring.signing("consent")
    header = {"alg": "EdDSA", "kid": key.kid, "typ": CONSENT_TYPE}
    with eddsa_allowed():
        token = jws.serialize_compact(
            header, rfc8785.dumps(artefact), OKPKey.import_key(key.private), algorithms=["EdDSA"]
        )
    head, _, signature = str(token).split(".")
    return f"{head}..{signature}"


async def test_a_consent_granted_before_the_case_was_signed_still_verifies_and_keeps_its_case(
    tmp_path: Path, keyring: KeyRing
) -> None:
    """Its grant verifies over the artefact it signed (no case); it is bound to its case.

    The case was stored with every request (and shown to the citizen who approved it)
    before the grant signed it: such a consent is in force for that case only.
    """
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await upgrade(engine, "0007")
        now = _now().replace(microsecond=0)
        until = now + 30 * DAY
        consent_id = "a" * 32
        old_artefact = {
            "id": consent_id,
            "subject": AN,
            "consumer": CLIENT,
            "procedure": RESIDENCE,
            "fields": ["Citizen.phone"],
            "validFrom": now.isoformat().replace("+00:00", "Z"),
            "validUntil": until.isoformat().replace("+00:00", "Z"),
        }
        grant = _grant_without_case(keyring, old_artefact)
        async with engine.begin() as conn:
            # Only the columns revision 0007 has.
            await conn.execute(
                consents.insert().values(
                    id=consent_id,
                    subject=AN,
                    consumer=CLIENT,
                    procedure=RESIDENCE,
                    fields=["Citizen.phone"],
                    case="CASE-OLD",
                    status="ACTIVE",
                    requested_at=now - DAY,
                    answer_by=now + 6 * DAY,
                    valid_until=until,
                    decided_at=now,
                    grant=grant,
                )
            )
        await upgrade(engine)
        store = ConsentStore(engine, keyring)
        stored = await store.get(consent_id)
        assert stored.artefact() == old_artefact
        assert stored.grant == grant
        assert verify_signed(keyring, grant, stored.artefact())
        [in_force] = await store.active_for(consumer=CLIENT, procedure=RESIDENCE, subjects=[AN])
        assert in_force.case == "CASE-OLD"
    finally:
        await engine.dispose()


async def test_a_grant_fails_with_another_gateways_keys(
    store: ConsentStore, tmp_path: Path
) -> None:
    active = await _active(store)
    assert active.grant is not None
    stranger = KeyRing.ensure(tmp_path / "other-keys")
    assert not verify_signed(stranger, active.grant, active.artefact())


async def test_a_revocation_is_signed_apart_from_the_grant(
    store: ConsentStore, keyring: KeyRing
) -> None:
    active = await _active(store)
    revoked = await store.revoke(active.id, AN, record=_by("revoked"))
    assert revoked.revocation is not None
    assert revoked.revoked_at is not None
    statement = {"id": active.id, "revokedAt": revoked.public()["revokedAt"]}
    assert verify_signed(keyring, revoked.revocation, statement)
    assert not verify_signed(keyring, revoked.revocation, revoked.artefact())
    assert revoked.grant is not None
    assert not verify_signed(keyring, revoked.grant, statement)


# -- what a client's request reaches ----------------------------------------------------


async def test_a_clients_consent_request_is_recorded_as_the_clients(
    store: ConsentStore, engine: AsyncEngine
) -> None:
    requests = ClientConsentRequests(
        store, policy_version="v-catalogue", answer_within=3 * DAY, max_validity=90 * DAY
    )
    until = _now() + 60 * DAY
    consent = await requests.request(
        subject=AN,
        consumer=CLIENT,
        procedure=RESIDENCE,
        fields=["Citizen.phone"],
        case="CASE-9",
        valid_until=until,
        request_id="req-graphql-1",
    )
    assert consent.status == "REQUESTED"
    assert consent.answer_by == consent.requested_at + 3 * DAY
    assert await requests.get(consent.id) == consent
    [event] = await _events(engine)
    assert (event["type"], event["outcome"]) == ("consent", "requested")
    assert event["request_id"] == "req-graphql-1"
    assert event["policy_version"] == "v-catalogue"
    assert event["client_id"] == CLIENT
    assert event["envelope"]["actor"] == "client"
    assert event["envelope"]["acr"] is None
    assert event["envelope"]["fields"] == ["Citizen.phone"]
    assert "CASE-9" not in orjson.dumps(event["envelope"]).decode()


async def test_a_clients_consent_request_keeps_to_its_max_validity(
    store: ConsentStore, engine: AsyncEngine
) -> None:
    requests = ClientConsentRequests(
        store, policy_version="v", answer_within=DAY, max_validity=90 * DAY
    )
    with pytest.raises(InvalidArgument):
        await requests.request(
            subject=AN,
            consumer=CLIENT,
            procedure=RESIDENCE,
            fields=["Citizen.phone"],
            case="CASE-9",
            valid_until=_now() + 91 * DAY,
            request_id="req-graphql-2",
        )
    assert await _events(engine) == []
