"""`Admission`: admitting a request, its rate limits, and what is recorded of it.

Offline: clients in a dict, the in-memory replay cache and rate limiter (its clock
fixed by the test), consents and recorder as lists, the shipped catalogue and its
default policy. An admitted request carries the token's purpose to the resolvers and
the sources; a signed refusal is recorded (the first of its client, code and minute in
full, the rest in one summary when the minute closes) and answered as the plain error;
a refusal before the signature records nothing. The access record of
an executed request groups its decisions and keeps personal data out of its envelope.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from joserfc.jwk import OKPKey
from prometheus_client import REGISTRY

from connectors import ConnectorRegistry
from gateway.admission import (
    Admission,
    Admitted,
    Client,
    ClientKey,
    Limits,
    MemoryRateLimiter,
    MemoryReplayCache,
    RequestVerifier,
    sign_request,
)
from gateway.admission._refusals import Refusals
from gateway.errors import (
    AuditUnavailable,
    BadSignature,
    GatewayError,
    InvalidPurpose,
    RateLimited,
    RequestMismatch,
    ServiceUnavailable,
    TokenExpired,
    TokenReplayed,
    Unauthenticated,
)
from gateway.records import Event, pseudonym
from policies import ActiveConsent, Catalogue, Purpose, default_policy, load_catalogue
from schema import RequestContext

AUDIENCE = "https://gateway.example.test"
CLIENT = "VN/GOV/CA-HCM/cu-tru"
OTHER = "VN/GOV/CA-HN/cu-tru"
RESIDENCE = "1.004222"  # Citizen.phone and Citizen.email by consent, the rest by law
HIDING = "LOCAL.criminal-case-identity-check"
AN, BINH, CHI = "079203001234", "001185000777", "036190000123"
KEY = b"pseudonym-key-of-the-test-32-byt"
PURPOSE = Purpose(RESIDENCE, "CASE-1", "officer-1", (AN,))
BODY = orjson.dumps({"query": f'{{ citizen(personalId: "{AN}") {{ fullName }} }}'})
# Two seconds into a minute: nothing crosses a window unless a test moves the clock.
MINUTE_START = 1_800_000_000 // 60 * 60
IDENTITY_CARD = ["Citizen.personalId", "Citizen.fullName", "Citizen.birthDate", "Citizen.gender"]

ED = OKPKey.generate_key("Ed25519")
STRANGER = OKPKey.generate_key("Ed25519")


# -- helpers ----------------------------------------------------------------------------


class Clients:
    """Two registered clients of the commune police, one Ed25519 key each."""

    def __init__(self) -> None:
        self.found: dict[tuple[str, str], tuple[Client, ClientKey]] = {}
        for client_id, kid, key in ((CLIENT, "ed-1", ED), (OTHER, "other-1", STRANGER)):
            client = Client(client_id, "Cư trú", "Công an", frozenset({"commune_police"}), "active")
            public = ClientKey(client_id, kid, "EdDSA", key.as_dict(private=False), "active")
            self.found[(client_id, kid)] = (client, public)

    async def lookup(self, client_id: str, kid: str) -> tuple[Client, ClientKey] | None:
        return self.found.get((client_id, kid))


class Consents:
    """The consents in force, counting how often admission asks for them."""

    def __init__(self, found: Sequence[ActiveConsent] = ()) -> None:
        self.found = list(found)
        self.calls: list[tuple[str, str, tuple[str, ...]]] = []

    async def active_for(
        self, *, consumer: str, procedure: str, subjects: Sequence[str]
    ) -> Sequence[ActiveConsent]:
        self.calls.append((consumer, procedure, tuple(subjects)))
        return list(self.found)


class Recorder:
    """Keeps every event it is given; its leaf hash is the SHA-256 of the event id.

    While `down`, every record fails as a recorder whose database is gone.
    """

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.down = False

    async def record(self, event: Event) -> bytes:
        if self.down:
            raise AuditUnavailable
        self.events.append(event)
        return hashlib.sha256(event.id.encode()).digest()


class Clock:
    """The rate limiter's clock (`time.time` as `gateway.admission._ratelimit` sees it)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@dataclass
class World:
    admission: Admission
    consents: Consents
    recorder: Recorder


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


_RATE_CLOCK = Clock(MINUTE_START + 2)
"""The clock of the rate limiter and of the refusals' minutes, moved by tests."""


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    _RATE_CLOCK.now = MINUTE_START + 2
    monkeypatch.setattr(
        "gateway.admission._ratelimit.time", SimpleNamespace(time=_RATE_CLOCK.time), raising=True
    )
    return _RATE_CLOCK


def _world(
    catalogue: Catalogue,
    *,
    per_client: int = 100,
    per_officer: int = 100,
    consents: Sequence[ActiveConsent] = (),
    clients: Clients | None = None,
    replay: Any = None,
    limiter: Any = None,
) -> World:
    verifier = RequestVerifier(
        clients=clients or Clients(),
        replay=replay or MemoryReplayCache(),
        audience=AUDIENCE,
        known_procedure=catalogue.get,
        hiding_allowed=lambda code: catalogue.get(code).hidden_access_allowed,
    )
    found, recorder = Consents(consents), Recorder()
    refusals = Refusals(recorder, policy_version=catalogue.version, clock=_RATE_CLOCK.time)
    admission = Admission(
        verifier=verifier,
        limiter=limiter or MemoryRateLimiter(),
        limits=Limits(per_client=per_client, per_officer=per_officer),
        policy=default_policy(catalogue),
        catalogue=catalogue,
        consents=found,
        recorder=recorder,
        pseudonym_key=KEY,
        refusals=refusals,
    )
    return World(admission, found, recorder)


@pytest.fixture
def world(catalogue: Catalogue) -> World:
    return _world(catalogue)


def _token(
    *,
    purpose: Purpose = PURPOSE,
    body: bytes = BODY,
    client_id: str = CLIENT,
    **options: Any,
) -> str:
    key, kid = (ED, "ed-1") if client_id == CLIENT else (STRANGER, "other-1")
    return sign_request(
        client_id=client_id,
        key=options.pop("key", key),
        kid=kid,
        audience=AUDIENCE,
        body=body,
        purpose=purpose,
        **options,
    )


def _claim(purpose: Any) -> str:
    """A token signed by the client whose purpose claim is `purpose` as given."""
    header, payload, _ = _token().split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["purpose"] = purpose
    signing_input = f"{header}.{_b64(orjson.dumps(claims))}"
    return f"{signing_input}.{_b64(ED.private_key.sign(signing_input.encode()))}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _admit(world: World, token: str, body: bytes = BODY, request: str = "req-1") -> Admitted:
    return await world.admission.admit(request, f"Bearer {token}", body)


async def _refused(world: World, token: str | None, body: bytes = BODY) -> GatewayError:
    """The error admission answers with (always the plain error, never RejectedRequest)."""
    authorization = None if token is None else f"Bearer {token}"
    with pytest.raises(GatewayError) as caught:
        await world.admission.admit("req-refused", authorization, body)
    return caught.value


def _personal_values_absent(envelope: Any, *values: str) -> bool:
    text = orjson.dumps(envelope).decode()
    return not any(value in text for value in values)


def _not_recorded() -> float:
    return REGISTRY.get_sample_value("gateway_refusals_not_recorded_total") or 0.0


def _refusals_counted(code: str) -> float:
    labels = {"procedure": RESIDENCE, "organisation": "Công an", "code": code}
    return REGISTRY.get_sample_value("gateway_requests_refused_total", labels) or 0.0


# -- admitted ---------------------------------------------------------------------------


async def test_an_admitted_request_carries_the_tokens_purpose(world: World) -> None:
    token = _token(jti="jti-admitted")
    admitted = await _admit(world, token)
    assert admitted.verified.jti == "jti-admitted"
    assert admitted.verified.token == token
    assert admitted.access.purpose == PURPOSE
    assert admitted.access.client_id == CLIENT
    assert admitted.access.agency_kinds == frozenset({"commune_police"})
    assert admitted.fetch.purpose == PURPOSE
    assert (admitted.fetch.request_id, admitted.fetch.client_id) == ("req-1", CLIENT)
    # Admission alone records nothing: the record is written once the request ran.
    assert world.recorder.events == []


async def test_the_access_knows_which_paths_of_its_procedure_are_read_by_consent(
    world: World,
) -> None:
    admitted = await _admit(world, _token())
    assert admitted.access.consent_paths == frozenset({"Citizen.phone", "Citizen.email"})


async def test_consents_are_loaded_only_when_a_consent_path_is_asked(
    catalogue: Catalogue,
) -> None:
    far = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)
    consent = ActiveConsent(
        "consent-1", AN, CLIENT, RESIDENCE, frozenset({"Citizen.phone"}), far, "CASE-1"
    )
    world = _world(catalogue, consents=[consent])
    access = (await _admit(world, _token())).access
    await access.prepare("Citizen", ["fullName", "birthDate"])
    assert world.consents.calls == []
    assert access.consents == ()
    await access.prepare("Citizen", ["fullName", "phone"])
    assert world.consents.calls == [(CLIENT, RESIDENCE, (AN,))]
    assert access.consents == (consent,)
    await access.prepare("Citizen", ["email"])
    assert len(world.consents.calls) == 1  # once per request


# -- refusals ---------------------------------------------------------------------------


async def test_a_signed_refusal_is_recorded_and_answered_as_the_plain_error(
    world: World,
) -> None:
    token = _token()
    error = await _refused(world, token, b'{"query":"{ another }"}')
    assert type(error) is RequestMismatch
    [event] = world.recorder.events
    assert event.type == "access"
    assert event.outcome == "rejected:REQUEST_MISMATCH"
    assert (event.request_id, event.client_id, event.procedure) == (
        "req-refused",
        CLIENT,
        RESIDENCE,
    )
    assert event.envelope == {
        "client": CLIENT,
        "organisation": "Công an",
        "officer": pseudonym(KEY, "officer-1", "officer"),
        "procedure": RESIDENCE,
        "status": 401,
        "errors": ["REQUEST_MISMATCH"],
    }
    assert _personal_values_absent(event.envelope, AN, "officer-1", "CASE-1")
    assert event.subjects == [AN]
    assert event.personal["token"] == token
    assert event.personal["officer"] == "officer-1"


async def test_a_replayed_token_is_recorded_as_replayed(world: World) -> None:
    token = _token()
    await _admit(world, token)
    assert type(await _refused(world, token)) is TokenReplayed
    assert [e.outcome for e in world.recorder.events] == ["rejected:TOKEN_REPLAYED"]


async def test_a_refused_purpose_records_only_its_well_formed_subjects(world: World) -> None:
    purpose = {
        "procedure": RESIDENCE,
        "case": "CASE-1",
        "officer": "officer-1",
        "subjects": [AN, "12345", 42, BINH],
    }
    error = await _refused(world, _claim(purpose))
    assert type(error) is InvalidPurpose
    [event] = world.recorder.events
    assert event.outcome == "rejected:INVALID_PURPOSE"
    assert event.subjects == [AN, BINH]
    assert event.envelope["status"] == 400
    assert _personal_values_absent(event.envelope, AN, BINH, "12345")


async def test_a_purpose_naming_too_many_records_its_first_fifty(world: World) -> None:
    named = [f"{i:012d}" for i in range(51)]
    purpose = {"procedure": RESIDENCE, "case": "C", "officer": "o", "subjects": named}
    assert type(await _refused(world, _claim(purpose))) is InvalidPurpose
    assert world.recorder.events[0].subjects == named[:50]


async def test_a_procedure_not_in_the_catalogue_is_not_recorded_as_one(world: World) -> None:
    unknown = Purpose("9.999999", "CASE-1", "officer-1", (AN,))
    error = await _refused(world, _token(purpose=unknown))
    assert error.code == "UNKNOWN_PROCEDURE"
    [event] = world.recorder.events
    assert event.outcome == "rejected:UNKNOWN_PROCEDURE"
    assert event.envelope["procedure"] is None
    assert event.procedure is None
    assert event.subjects == [AN]


async def test_a_purpose_that_is_not_an_object_is_recorded_without_officer_or_subjects(
    world: World,
) -> None:
    error = await _refused(world, _claim("just because"))
    assert type(error) is InvalidPurpose
    [event] = world.recorder.events
    assert event.envelope["officer"] is None
    assert event.envelope["procedure"] is None
    assert event.subjects == []


def _forged() -> str:
    header, claims, _ = _token().split(".")
    return f"{header}.{claims}.{_b64(b'x' * 64)}"


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        pytest.param(None, Unauthenticated, id="no-token"),
        pytest.param("not-a-token", Unauthenticated, id="garbage"),
        pytest.param(_forged(), BadSignature, id="forged"),
        pytest.param(_token(key=STRANGER), BadSignature, id="another-key"),
        pytest.param(_token(client_id="VN/GOV/NOBODY/x", key=ED), BadSignature, id="unknown"),
    ],
)
async def test_a_refusal_before_the_signature_records_nothing(
    world: World, token: str | None, expected: type[GatewayError]
) -> None:
    assert type(await _refused(world, token)) is expected
    assert world.recorder.events == []


# -- rate limits ------------------------------------------------------------------------


async def test_a_client_is_limited_to_its_requests_a_minute(catalogue: Catalogue) -> None:
    world = _world(catalogue, per_client=2)
    for _ in range(2):
        await _admit(world, _token())
    third = _token(jti="jti-third")
    error = await _refused(world, third)
    assert isinstance(error, RateLimited)
    assert error.code == "RATE_LIMITED"
    assert error.retry_after == 58
    assert error.extensions["retryAfter"] == 58
    assert "per client" in error.message


async def test_a_rate_limited_request_is_recorded(catalogue: Catalogue) -> None:
    world = _world(catalogue, per_client=1)
    await _admit(world, _token())
    token = _token(jti="jti-limited")
    assert type(await _refused(world, token)) is RateLimited
    [event] = world.recorder.events
    assert event.outcome == "rejected:RATE_LIMITED"
    assert event.client_id == CLIENT
    assert event.procedure == RESIDENCE
    assert event.envelope == {
        "client": CLIENT,
        "organisation": "Công an",
        "kid": "ed-1",
        "officer": pseudonym(KEY, "officer-1", "officer"),
        "procedure": RESIDENCE,
        "case": pseudonym(KEY, "CASE-1", "case"),
        "subjects": 1,
        "jti": "jti-limited",
        "status": 429,
        "errors": ["RATE_LIMITED"],
    }
    assert event.personal["token"] == token
    # The people the token names see the attempt, and forgetting one of them finds it.
    assert list(event.subjects) == [AN]
    assert event.personal["officer"] == "officer-1"


async def test_an_officer_is_limited_within_the_client(catalogue: Catalogue) -> None:
    world = _world(catalogue, per_officer=2)
    for _ in range(2):
        await _admit(world, _token())
    error = await _refused(world, _token())
    assert isinstance(error, RateLimited)
    assert "per officer" in error.message
    # Another officer of the client, and the same officer id at another client, go on.
    colleague = Purpose(RESIDENCE, "CASE-1", "officer-2", (AN,))
    await _admit(world, _token(purpose=colleague))
    await _admit(world, _token(client_id=OTHER))


async def test_the_limits_start_again_with_the_next_minute(
    catalogue: Catalogue, clock: Clock
) -> None:
    world = _world(catalogue, per_client=1)
    await _admit(world, _token())
    assert type(await _refused(world, _token())) is RateLimited
    clock.now = MINUTE_START + 60
    await _admit(world, _token())


async def test_an_old_token_replayed_in_a_loop_is_one_record_and_one_summary(
    catalogue: Catalogue, clock: Clock
) -> None:
    world = _world(catalogue, per_client=3)
    old = _token(now=int(time.time()) - 3600, ttl=60)
    counted = _refusals_counted("TOKEN_EXPIRED")
    for _ in range(8):
        assert type(await _refused(world, old)) is TokenExpired
    # The first is recorded before its answer; the other seven wait for the minute.
    [first] = world.recorder.events
    assert (first.outcome, first.personal["token"]) == ("rejected:TOKEN_EXPIRED", old)
    assert _refusals_counted("TOKEN_EXPIRED") - counted == 8
    assert await world.admission.refusals.flush() == 0  # the minute is still open
    clock.now = MINUTE_START + 60
    assert await world.admission.refusals.flush() == 1
    [_, summary] = world.recorder.events
    assert summary.outcome == "rejected:TOKEN_EXPIRED"
    assert summary.envelope == {
        "client": CLIENT,
        "organisation": "Công an",
        "procedure": RESIDENCE,
        "status": 401,
        "errors": ["TOKEN_EXPIRED"],
        "refused": 7,
        "minute": "2027-01-15T08:00:00Z",
    }
    assert (summary.client_id, summary.personal, list(summary.subjects)) == (CLIENT, {}, [])
    # Dated at its minute's last instant, wherever late it was written.
    assert summary.ts.isoformat() == "2027-01-15T08:00:59.999999+00:00"
    assert summary.procedure == RESIDENCE
    assert await world.admission.refusals.flush() == 0  # written once
    # Refusals are counted apart from the client's requests: it may still ask.
    await _admit(world, _token())


async def test_each_refusal_code_and_each_minute_has_its_first_record(
    catalogue: Catalogue, clock: Clock
) -> None:
    world = _world(catalogue, per_client=1)
    old = _token(now=int(time.time()) - 3600, ttl=60)
    for _ in range(3):
        await _refused(world, old)
    await _admit(world, _token())
    for _ in range(3):
        assert type(await _refused(world, _token())) is RateLimited
    assert [e.outcome for e in world.recorder.events] == [
        "rejected:TOKEN_EXPIRED",
        "rejected:RATE_LIMITED",
    ]
    clock.now = MINUTE_START + 61
    await _refused(world, old)
    outcomes = [e.outcome for e in world.recorder.events]
    # The closed minute's two summaries wait for the flush; the new minute's first is in.
    assert outcomes[2:] == ["rejected:TOKEN_EXPIRED"]
    await world.admission.refusals.flush()
    refused = {e.outcome: e.envelope.get("refused") for e in world.recorder.events[3:]}
    assert refused == {"rejected:TOKEN_EXPIRED": 2, "rejected:RATE_LIMITED": 2}


async def test_a_flood_of_refusals_is_bounded_per_minute(
    catalogue: Catalogue, clock: Clock
) -> None:
    world = _world(catalogue)
    old = _token(now=int(time.time()) - 3600, ttl=60)
    for minute in range(3):
        clock.now = MINUTE_START + 60 * minute + 1
        for _ in range(200):
            await _refused(world, old)
        await world.admission.refusals.flush()
    # Three minutes of 200: a first and a summary of the two closed minutes, and the
    # first of the open one; stopping writes its summary too.
    assert len(world.recorder.events) == 5
    await world.admission.refusals.stop()
    counts = [e.envelope.get("refused", 1) for e in world.recorder.events]
    assert (len(counts), sum(counts)) == (6, 600)


async def test_when_the_database_is_down_a_refusal_is_503_and_counted(
    catalogue: Catalogue, clock: Clock
) -> None:
    world = _world(catalogue)
    old = _token(now=int(time.time()) - 3600, ttl=60)
    world.recorder.down = True
    before = _not_recorded()
    for _ in range(2):
        assert type(await _refused(world, old)) is AuditUnavailable
    assert _not_recorded() - before == 2
    # Back: the next refusal is recorded in full, as the first of its minute.
    world.recorder.down = False
    assert type(await _refused(world, old)) is TokenExpired
    [event] = world.recorder.events
    assert event.personal["token"] == old


def _changed(*, client_status: str = "active", key_status: str = "active") -> Clients:
    clients = Clients()
    client, key = clients.found[(CLIENT, "ed-1")]
    clients.found[(CLIENT, "ed-1")] = (
        Client(client.id, client.name, client.organisation, client.agency_kinds, client_status),
        ClientKey(key.client_id, key.kid, key.alg, key.jwk, key_status),
    )
    return clients


class Down:
    """A replay cache or rate limiter whose Redis does not answer."""

    async def first_use(self, issuer: str, jti: str, ttl: int, **_: Any) -> bool:
        raise ServiceUnavailable("The replay cache is unavailable.")

    async def hit(self, bucket: str, key: str) -> tuple[int, int]:
        raise ServiceUnavailable("The rate limiter is unavailable.")

    async def hit_all(self, hits: Any) -> None:
        raise ServiceUnavailable("The rate limiter is unavailable.")


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"clients": _changed(client_status="suspended")}, "UNAUTHENTICATED"),
        ({"clients": _changed(key_status="revoked")}, "BAD_SIGNATURE"),
        ({"replay": Down()}, "SERVICE_UNAVAILABLE"),
        ({"limiter": Down()}, "SERVICE_UNAVAILABLE"),
        ({"replay": Down(), "limiter": Down()}, "SERVICE_UNAVAILABLE"),
    ],
    ids=["suspended client", "revoked key", "replay cache down", "rate limiter down", "redis down"],
)
async def test_every_refusal_after_the_signature_is_recorded(
    catalogue: Catalogue, changes: dict[str, Any], code: str
) -> None:
    world = _world(catalogue, **changes)
    token = _token()
    error = await _refused(world, token)
    assert error.code == code
    [event] = world.recorder.events
    assert event.outcome == f"rejected:{code}"
    assert (event.client_id, event.personal["token"]) == (CLIENT, token)
    assert event.envelope["errors"] == [code]
    assert list(event.subjects) == [AN]


async def test_a_summary_that_cannot_be_written_is_retried_then_counted(
    catalogue: Catalogue, clock: Clock
) -> None:
    world = _world(catalogue)
    old = _token(now=int(time.time()) - 3600, ttl=60)
    for _ in range(4):
        await _refused(world, old)
    clock.now = MINUTE_START + 60
    world.recorder.down = True
    assert await world.admission.refusals.flush() == 0
    assert world.admission.refusals.pending() == 3  # kept for the next flush
    world.recorder.down = False
    assert await world.admission.refusals.flush() == 1
    assert world.recorder.events[-1].envelope["refused"] == 3
    # A summary the database refuses for longer than the retry window is dropped
    # into the metric.
    for _ in range(3):
        await _refused(world, old)
    world.recorder.down = True
    before = _not_recorded()
    clock.now = MINUTE_START + 60 * 12
    await world.admission.refusals.flush()
    assert world.admission.refusals.pending() == 0
    assert _not_recorded() - before == 2


# -- the record of an executed request --------------------------------------------------


async def _executed(
    catalogue: Catalogue, purpose: Purpose
) -> tuple[World, Admitted, RequestContext, str]:
    far = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)
    consent = ActiveConsent(
        "consent-1", AN, CLIENT, RESIDENCE, frozenset({"Citizen.phone"}), far, purpose.case
    )
    world = _world(catalogue, consents=[consent])
    token = _token(purpose=purpose)
    admitted = await _admit(world, token)
    ctx = RequestContext(
        registry=ConnectorRegistry([]),
        fetch=admitted.fetch,
        max_batch=10,
        access=admitted.access,
    )
    return world, admitted, ctx, token


async def test_the_record_groups_decisions_by_path_code_and_basis(catalogue: Catalogue) -> None:
    purpose = Purpose(RESIDENCE, "CASE-7", "officer-7", (AN, BINH))
    world, admitted, ctx, _ = await _executed(catalogue, purpose)
    access = admitted.access
    await access.prepare("Citizen", ["fullName", "phone"])
    for subject in (AN, BINH):
        access.decide("Citizen", subject, ["fullName", "phone"])
    access.decide("Citizen", CHI, ["fullName"])  # not a subject of the case
    law = next(d.reference for d in access.decisions if d.code == "ALLOWED_BY_LAW")
    assert law

    recorded = await world.admission.record(
        admitted, ctx, outcome="served", status=200, operation="Lookup", error_codes=[]
    )

    [event] = world.recorder.events
    assert recorded is event
    assert event.envelope["decisions"] == [
        {
            "path": "Citizen.fullName",
            "decision": "ALLOWED_BY_LAW",
            "basis": law,
            "subjects": [0, 1],
        },
        {
            "path": "Citizen.phone",
            "decision": "ALLOWED_BY_CONSENT",
            "basis": "consent-1",
            "subjects": [0],
        },
        {"path": "Citizen.phone", "decision": "CONSENT_REQUIRED", "basis": None, "subjects": [1]},
        {
            "path": "Citizen.fullName",
            "decision": "SUBJECT_NOT_IN_CASE",
            "basis": None,
            "subjects": [-1],
        },
    ]
    # Everyone named or decided for sees this access.
    assert {AN, BINH, CHI} <= set(event.subjects)
    assert list(event.subjects)[:2] == [AN, BINH]


async def test_the_record_pseudonymises_officer_and_case(catalogue: Catalogue) -> None:
    purpose = Purpose(RESIDENCE, "CASE-7", "officer-7", (AN, BINH))
    world, admitted, ctx, token = await _executed(catalogue, purpose)
    admitted.access.decide("Citizen", AN, ["fullName"])
    ctx.note_served(AN, ["Citizen.fullName"])
    ctx.actions.append({"action": "consentRequested", "consent": "c-2", "subject": BINH})
    await world.admission.record(
        admitted, ctx, outcome="served", status=200, operation="Lookup", error_codes=[]
    )
    [event] = world.recorder.events
    envelope = event.envelope
    assert envelope["officer"] == pseudonym(KEY, "officer-7", "officer")
    assert envelope["case"] == pseudonym(KEY, "CASE-7", "case")
    assert envelope["officer"] != pseudonym(KEY, "officer-1", "officer")
    assert (envelope["client"], envelope["kid"], envelope["procedure"]) == (
        CLIENT,
        "ed-1",
        RESIDENCE,
    )
    assert envelope["subjects"] == 2
    assert envelope["jti"] == admitted.verified.jti
    assert envelope["actions"] == [{"action": "consentRequested", "consent": "c-2"}]
    assert _personal_values_absent(envelope, AN, BINH, "officer-7", "CASE-7")
    assert event.personal == {
        "subjects": [AN, BINH],
        "officer": "officer-7",
        "case": "CASE-7",
        "operation": "Lookup",
        "token": token,
        "served": {AN: ["Citizen.fullName"]},
    }
    assert (event.type, event.outcome, event.request_id) == ("access", "served", "req-1")
    assert event.policy_version == catalogue.version
    assert (event.client_id, event.procedure) == (CLIENT, RESIDENCE)


async def test_the_record_keeps_status_sorted_errors_and_sources(catalogue: Catalogue) -> None:
    world, admitted, ctx, _ = await _executed(catalogue, PURPOSE)
    ctx.sources.update({"population", "land"})
    await world.admission.record(
        admitted,
        ctx,
        outcome="served",
        status=200,
        operation=None,
        error_codes=["CONSENT_REQUIRED", "SOURCE_TIMEOUT", "CONSENT_REQUIRED"],
    )
    envelope = world.recorder.events[0].envelope
    assert envelope["status"] == 200
    assert envelope["errors"] == ["CONSENT_REQUIRED", "SOURCE_TIMEOUT"]
    assert envelope["sources"] == ["land", "population"]
    assert envelope["sourceCalls"] == 0
    assert "hiddenUntil" not in envelope


async def test_fields_served_and_papers_avoided_count_for_an_answer_with_data(
    catalogue: Catalogue,
) -> None:
    purpose = Purpose(RESIDENCE, "CASE-7", "officer-7", (AN, BINH))
    world, admitted, ctx, _ = await _executed(catalogue, purpose)
    ctx.note_served(AN, IDENTITY_CARD)  # the whole identity card: one paper avoided
    ctx.note_served(BINH, ["Citizen.fullName"])  # part of it: none
    await world.admission.record(
        admitted, ctx, outcome="served", status=200, operation=None, error_codes=[]
    )
    envelope = world.recorder.events[0].envelope
    assert envelope["fieldsServed"] == 5
    assert envelope["papersAvoided"] == 1


@pytest.mark.parametrize("status", [400, 403, 500, 503])
async def test_an_answer_without_data_serves_nothing(catalogue: Catalogue, status: int) -> None:
    world, admitted, ctx, _ = await _executed(catalogue, PURPOSE)
    ctx.note_served(AN, IDENTITY_CARD)
    await world.admission.record(
        admitted, ctx, outcome="failed", status=status, operation=None, error_codes=["X"]
    )
    envelope = world.recorder.events[0].envelope
    assert (envelope["status"], envelope["fieldsServed"], envelope["papersAvoided"]) == (
        status,
        0,
        0,
    )


async def test_a_hidden_access_says_until_when_in_its_record(catalogue: Catalogue) -> None:
    until = datetime.datetime.now(datetime.UTC).replace(microsecond=0) + datetime.timedelta(days=10)
    purpose = Purpose(HIDING, "CASE-H", "officer-1", (AN,), hidden_until=until)
    world, admitted, ctx, _ = await _executed(catalogue, purpose)
    await world.admission.record(
        admitted, ctx, outcome="served", status=200, operation=None, error_codes=[]
    )
    envelope = world.recorder.events[0].envelope
    assert envelope["hiddenUntil"] == until.isoformat().replace("+00:00", "Z")


async def test_an_answer_without_data_keeps_no_served_fields(catalogue: Catalogue) -> None:
    world, admitted, ctx, _ = await _executed(catalogue, PURPOSE)
    ctx.note_served(AN, ["Citizen.fullName"])
    await world.admission.record(
        admitted, ctx, outcome="invalid_request", status=400, operation=None, error_codes=[]
    )
    [event] = world.recorder.events
    assert event.personal["served"] == {}


async def test_refusals_for_each_procedure_have_their_own_summary(
    catalogue: Catalogue, clock: Clock
) -> None:
    world = _world(catalogue)
    other = Purpose(HIDING, "CASE-1", "officer-1", (AN,))
    for purpose in (PURPOSE, PURPOSE, other, other, other):
        old = _token(purpose=purpose, now=int(time.time()) - 3600, ttl=60)
        await _refused(world, old)
    clock.now = MINUTE_START + 60
    await world.admission.refusals.flush()
    by_procedure: dict[str | None, int] = {}
    for e in world.recorder.events:
        by_procedure[e.procedure] = by_procedure.get(e.procedure, 0) + e.envelope.get("refused", 1)
    assert by_procedure == {RESIDENCE: 2, HIDING: 3}
    assert len(world.recorder.events) == 4  # a first and a summary for each


async def test_a_refused_covert_check_stays_hidden_from_the_people_it_names(
    catalogue: Catalogue,
) -> None:
    world = _world(catalogue)
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)
    covert = Purpose(HIDING, "CASE-9", "officer-9", (AN,), until)
    old = _token(purpose=covert, now=int(time.time()) - 3600, ttl=60)
    assert type(await _refused(world, old)) is TokenExpired
    [event] = world.recorder.events
    assert event.envelope["hiddenUntil"] == until.isoformat().replace("+00:00", "Z")
    assert list(event.subjects) == [AN]


@pytest.mark.parametrize("asked", ["next week", "2030-01-01T00:00:00", "9999-01-01T00:00:00Z"])
async def test_a_refused_covert_check_with_an_odd_date_is_hidden_for_the_longest(
    catalogue: Catalogue, asked: str
) -> None:
    world = _world(catalogue)
    token = _claim({**PURPOSE.claim(), "procedure": HIDING, "hiddenUntil": asked})
    await _refused(world, token)
    [event] = world.recorder.events
    hidden = datetime.datetime.fromisoformat(event.envelope["hiddenUntil"])
    latest = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=365)
    assert abs((hidden - latest).total_seconds()) < 60


async def test_a_procedure_that_cannot_hide_keeps_its_refusals_visible(
    catalogue: Catalogue,
) -> None:
    world = _world(catalogue)
    token = _claim({**PURPOSE.claim(), "hiddenUntil": "2030-01-01T00:00:00Z"})
    await _refused(world, token)
    [event] = world.recorder.events
    assert "hiddenUntil" not in event.envelope


# -- a token the gateway answered 503 may come once more ----------------------------------


class DownOnce:
    """A rate limiter whose Redis does not answer the first hit, then counts in memory."""

    def __init__(self) -> None:
        self.down = True
        self.limiter = MemoryRateLimiter()

    async def hit(self, bucket: str, key: str) -> tuple[int, int]:
        if self.down:
            self.down = False
            raise ServiceUnavailable("The rate limiter is unavailable.")
        return await self.limiter.hit(bucket, key)

    async def hit_all(self, hits: Any) -> Any:
        if self.down:
            self.down = False
            raise ServiceUnavailable("The rate limiter is unavailable.")
        return await self.limiter.hit_all(hits)


async def test_a_token_spent_then_refused_with_503_by_a_later_fault_comes_once_more(
    catalogue: Catalogue,
) -> None:
    world = _world(catalogue, limiter=DownOnce())
    token = _token()
    # The jti was spent, then the rate limiter did not answer: 503, nothing served.
    assert (await _refused(world, token)).code == "SERVICE_UNAVAILABLE"
    admitted = await world.admission.admit("req-retry", f"Bearer {token}", BODY)
    assert admitted.verified.reused
    assert (await _refused(world, token)).code == "TOKEN_REPLAYED"
    refusal, replayed = world.recorder.events
    assert (refusal.envelope["jti"], refusal.envelope.get("reusesRefusedToken")) == (
        admitted.verified.jti,
        None,
    )
    assert replayed.outcome == "rejected:TOKEN_REPLAYED"


async def test_a_token_whose_record_could_not_be_written_comes_once_more(
    catalogue: Catalogue,
) -> None:
    world, admitted, ctx, token = await _executed(catalogue, PURPOSE)
    world.recorder.down = True
    with pytest.raises(AuditUnavailable):
        await world.admission.record(
            admitted, ctx, outcome="served", status=200, operation=None, error_codes=[]
        )
    world.recorder.down = False
    retry = await world.admission.admit("req-retry", f"Bearer {token}", BODY)
    assert retry.verified.reused
    assert (await _refused(world, token)).code == "TOKEN_REPLAYED"


async def test_a_token_refused_with_429_stays_spent(catalogue: Catalogue) -> None:
    world = _world(catalogue, per_client=0)
    token = _token()
    assert (await _refused(world, token)).code == "RATE_LIMITED"
    assert (await _refused(world, token)).code == "TOKEN_REPLAYED"
