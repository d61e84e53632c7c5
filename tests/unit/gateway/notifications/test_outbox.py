"""The outbox and its dispatcher on a migrated SQLite file, the channel an
`httpx.MockTransport`, time a clock the test moves: delivery, retries with backoff,
refusals, the lease between replicas, the daily digest's day and the breaker watch."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.instants import VIETNAM
from gateway.notifications import (
    BreakerWatch,
    Delivery,
    DeliveryFailed,
    Dispatcher,
    HttpSender,
    Notification,
    ReadDigests,
    RecipientSeal,
    enqueue,
    forget_recipient,
    read_digest_enabled,
    set_read_digest,
)
from gateway.notifications._texts import link_of, texts_of
from gateway.records import Event, insert_events
from gateway.storage import notifications

AN = "079203001234"
OTHER = "001099012345"
ORIGIN = "https://gateway.example.gov.vn"
T0 = datetime.datetime(2026, 12, 6, 3, 0, tzinfo=datetime.UTC)
SEAL = RecipientSeal(b"k" * 32)


class Clock:
    def __init__(self, now: datetime.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += datetime.timedelta(seconds=seconds)


class Channel:
    """A channel answering each POST with the next status of `statuses` (then 201)."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.statuses.pop(0) if self.statuses else 201
        return httpx.Response(status, json={})

    def sender(self) -> HttpSender:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self.handler))
        return HttpSender("https://channel.example/notifications", token="s3cret", http=http)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]


def _dispatcher(engine: AsyncEngine, channel: Channel, clock: Clock, **options: Any) -> Dispatcher:
    return Dispatcher(
        engine,
        channel.sender(),
        SEAL,
        origin=ORIGIN,
        backoff_base=10.0,
        backoff_max=40.0,
        clock=clock,
        **options,
    )


def _consent_notice(subject: str = AN) -> Notification:
    return Notification.to_citizen(
        SEAL,
        subject,
        "consent_requested",
        "c0ffee",
        {
            "consent": "c0ffee",
            "consumer": "VN/GOV/BCA/cu-tru",
            "consumerName": {"vi": "Bộ Công an", "en": "Ministry of Public Security"},
            "procedure": "1.004222",
            "procedureName": None,
            "fieldCount": 1,
            "answerBy": "2026-12-13T03:00:00Z",
        },
    )


async def _put(engine: AsyncEngine, notification: Notification, clock: Clock) -> bool:
    async with engine.begin() as conn:
        return await enqueue(conn, SEAL, notification, now=clock())


async def _rows(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(sa.select(notifications))).all())


async def test_a_notification_is_delivered_with_its_id_as_idempotency_key(
    engine: AsyncEngine,
) -> None:
    clock, channel = Clock(), Channel()
    notice = _consent_notice()
    assert await _put(engine, notice, clock)
    assert not await _put(engine, notice, clock)  # its cause again: the same notification

    assert await _dispatcher(engine, channel, clock).once() == 1
    [request] = channel.requests
    assert request.headers["Idempotency-Key"] == notice.id
    assert request.headers["Authorization"] == "Bearer s3cret"
    [body] = channel.bodies()
    assert body["recipient"] == {"type": "citizen", "personalId": AN}
    assert body["link"] == f"{ORIGIN}/toi/dong-y"
    assert "Bộ Công an" in body["text"]["vi"]
    [row] = await _rows(engine)
    assert (row.status, row.attempts, row.sealed_recipient) == ("delivered", 1, None)
    assert AN not in row.recipient
    assert AN not in json.dumps(row.payload)
    assert await _dispatcher(engine, channel, clock).once() == 0  # nothing more to send


async def test_failures_wait_longer_each_time_then_it_is_delivered(engine: AsyncEngine) -> None:
    clock, channel = Clock(), Channel(503, 503)
    await _put(engine, _consent_notice(), clock)
    dispatcher = _dispatcher(engine, channel, clock)

    assert await dispatcher.once() == 0
    [row] = await _rows(engine)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "http_503")
    first_wait = (row.next_attempt_at - clock()).total_seconds()
    assert 7.5 <= first_wait <= 10.0
    assert await dispatcher.once() == 0
    assert len(channel.requests) == 1

    clock.advance(first_wait)
    assert await dispatcher.once() == 0
    [row] = await _rows(engine)
    second_wait = (row.next_attempt_at - clock()).total_seconds()
    assert row.attempts == 2
    assert 15.0 <= second_wait <= 20.0

    clock.advance(second_wait)
    assert await dispatcher.once() == 1
    [row] = await _rows(engine)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 3, None)
    assert len({r.headers["Idempotency-Key"] for r in channel.requests}) == 1


async def test_a_refusal_or_too_many_failures_leave_it_failed(engine: AsyncEngine) -> None:
    clock = Clock()
    await _put(engine, _consent_notice(AN), clock)
    refusing = Channel(400)
    await _dispatcher(engine, refusing, clock).once()
    [row] = await _rows(engine)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "http_400")

    await _put(engine, _consent_notice(OTHER), clock)
    down = Channel(*[502] * 10)
    dispatcher = _dispatcher(engine, down, clock, max_attempts=3)
    for _ in range(5):
        await dispatcher.once()
        clock.advance(3600)
    assert len(down.requests) == 3
    failed = {r.recipient: (r.status, r.attempts, r.last_error) for r in await _rows(engine)}
    assert failed[_consent_notice(OTHER).recipient] == ("failed", 3, "http_502")


async def test_one_replica_delivers_until_its_lease_expires(engine: AsyncEngine) -> None:
    clock = Clock()
    first, second = Channel(), Channel()
    one = _dispatcher(engine, first, clock, lease_seconds=30)
    other = _dispatcher(engine, second, clock, lease_seconds=30)
    assert await one.once() == 0  # takes the lease; nothing to send yet
    await _put(engine, _consent_notice(), clock)
    assert await other.once() == 0
    assert second.requests == []
    clock.advance(31)  # the holder stopped renewing
    assert await other.once() == 1
    assert await one.once() == 0
    assert first.requests == []
    assert len(second.requests) == 1


async def test_a_stopped_dispatcher_gives_its_lease_up(engine: AsyncEngine) -> None:
    clock = Clock()
    one = _dispatcher(engine, Channel(), clock)
    await one.once()
    await one.start()
    await one.stop()
    await _put(engine, _consent_notice(), clock)
    assert await _dispatcher(engine, Channel(), clock).once() == 1


async def test_a_recipient_that_does_not_open_is_not_sent(engine: AsyncEngine) -> None:
    clock, channel = Clock(), Channel()
    await _put(engine, _consent_notice(), clock)
    stranger = Dispatcher(
        engine, channel.sender(), RecipientSeal(b"x" * 32), origin=ORIGIN, clock=clock
    )
    await stranger.once()
    assert channel.requests == []
    [row] = await _rows(engine)
    assert (row.status, row.last_error) == ("failed", "recipient_unknown")


async def test_the_http_sender_tells_what_may_pass_from_a_refusal() -> None:
    def raising(error: Exception) -> Callable[[httpx.Request], httpx.Response]:
        def handler(request: httpx.Request) -> httpx.Response:
            raise error

        return handler

    delivery = Delivery(
        id="a" * 32,
        kind="breaker_open",
        recipient={"type": "agency_admins", "organisation": "VN/GOV/BCA"},
        title={"vi": "t", "en": "t"},
        text={"vi": "t", "en": "t"},
        link=ORIGIN,
        data={},
        created_at="2026-12-06T03:00:00Z",
    )
    assert "VN/GOV/BCA" not in repr(delivery)
    cases = [
        (lambda r: httpx.Response(429), "http_429", True),
        (lambda r: httpx.Response(500), "http_500", True),
        (lambda r: httpx.Response(404), "http_404", False),
        (raising(httpx.ConnectError("refused")), "unreachable", True),
        (raising(httpx.ReadTimeout("slow")), "timeout", True),
    ]
    for handler, code, retriable in cases:
        sender = HttpSender(
            "https://channel.example/n",
            http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        )
        with pytest.raises(DeliveryFailed) as caught:
            await sender.send(delivery)
        assert (caught.value.code, caught.value.retriable) == (code, retriable)
    assert "s3cret" not in repr(HttpSender("https://channel.example/n", token="s3cret"))


def _read(subject: str, ts: datetime.datetime, organisation: str = "Commune Police") -> Event:
    return Event(
        type="access",
        request_id="req",
        outcome="ok",
        policy_version="v",
        envelope={"client": "VN/GOV/CA-HN/cu-tru", "organisation": organisation},
        personal={"subjects": [subject]},
        subjects=[subject],
        ts=ts,
    )


async def test_the_digest_job_writes_yesterdays_digests_once_the_day_has_turned(
    engine: AsyncEngine,
) -> None:
    # 2026-12-06 in Vietnam runs from 2026-12-05T17:00Z to 2026-12-06T17:00Z.
    day_start = datetime.datetime(2026, 12, 6, tzinfo=VIETNAM)
    async with engine.begin() as conn:
        await insert_events(
            conn,
            [
                _read(AN, day_start + datetime.timedelta(hours=1)),
                _read(AN, day_start + datetime.timedelta(hours=23)),
                _read(AN, day_start - datetime.timedelta(minutes=1)),  # the day before
                _read(AN, day_start + datetime.timedelta(hours=25)),  # the day after
                _read(OTHER, day_start + datetime.timedelta(hours=2)),  # did not ask
            ],
        )
    await set_read_digest(engine, SEAL, AN, True)
    await set_read_digest(engine, SEAL, OTHER, True)
    await set_read_digest(engine, SEAL, OTHER, False)
    digests = ReadDigests(engine, SEAL)

    await digests(day_start + datetime.timedelta(hours=23, minutes=59))  # still that day
    assert [(r.payload["day"], r.payload["count"]) for r in await _rows(engine)] == [
        ("2026-12-05", 1)
    ]
    await digests(day_start + datetime.timedelta(days=1, minutes=1))  # just turned
    await digests(day_start + datetime.timedelta(days=1, hours=5))  # same day: nothing more
    found = {r.payload["day"]: r for r in await _rows(engine)}
    digest = found["2026-12-06"]
    assert digest.payload["count"] == 2
    assert digest.payload["organisations"] == [
        {"code": "Commune Police", "vi": "Commune Police", "en": "Commune Police", "count": 2}
    ]
    assert digest.recipient == f"citizen:{SEAL.handle(AN)}"
    assert all(r.recipient == f"citizen:{SEAL.handle(AN)}" for r in found.values())

    channel = Channel()
    await _dispatcher(engine, channel, Clock(day_start + datetime.timedelta(days=2))).once()
    bodies = {b["data"]["day"]: b for b in channel.bodies()}
    assert bodies["2026-12-06"]["link"] == f"{ORIGIN}/toi?from=2026-12-06&to=2026-12-06"
    assert "06/12/2026" in bodies["2026-12-06"]["title"]["vi"]


async def test_a_breaker_open_past_the_threshold_is_told_once(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO connectors (name, kind, title, agency, version, manifest, "
                "manifest_sha256, origin, status, registered_at, updated_at) VALUES "
                "('population', 'rest', '', 'VN/GOV/BCA/C06', 1, '{}', '', 'file', 'active', "
                ":t, :t)"
            ),
            {"t": T0},
        )
    clock = Clock()
    states = {"population": "open"}
    watch = BreakerWatch(engine, SEAL, lambda: states, threshold=datetime.timedelta(minutes=10))
    await watch(clock())
    clock.advance(9 * 60)
    await watch(clock())
    assert await _rows(engine) == []
    clock.advance(61)
    states["population"] = "half_open"  # a trial under way is not the end of it
    await watch(clock())
    await watch(clock())
    [row] = await _rows(engine)
    assert row.recipient == "agency:VN/GOV/BCA"
    assert row.payload["connector"] == "population"
    assert row.payload["minutes"] == 10
    # Another replica sees the same outage: the agency was told already.
    other = BreakerWatch(engine, SEAL, lambda: states, threshold=datetime.timedelta(minutes=1))
    await other(clock())
    clock.advance(120)
    await other(clock())
    assert len(await _rows(engine)) == 1
    # Closed, then open again the next day: a new outage, told again.
    states["population"] = "closed"
    await watch(clock())
    clock.advance(86_400)
    states["population"] = "open"
    await watch(clock())
    clock.advance(601)
    await watch(clock())
    assert len(await _rows(engine)) == 2


def test_every_kind_has_words_in_both_languages_and_a_link() -> None:
    payloads = {
        "consent_requested": _consent_notice().payload,
        "read_digest": {"day": "2026-12-06", "count": 1, "organisations": []},
        "breaker_open": {
            "connector": "population",
            "openSince": "2026-12-06T03:00:00Z",
            "minutes": 10,
        },
    }
    for kind, payload in payloads.items():
        link = link_of(kind, payload, ORIGIN)
        words = texts_of(kind, payload, link)
        assert link.startswith(ORIGIN)
        for language in ("vi", "en"):
            assert words["title"][language]
            assert link in words["text"][language]
    with pytest.raises(ValueError, match="no text"):
        texts_of("unknown", {}, ORIGIN)


def test_the_seal_hides_the_id_and_binds_it_to_its_notification() -> None:
    sealed = SEAL.seal(AN, "n1")
    assert AN.encode() not in sealed
    assert SEAL.open(sealed, "n1") == AN
    assert SEAL.open(sealed, "n2") is None
    assert RecipientSeal(b"x" * 32).open(sealed, "n1") is None
    assert SEAL.handle(AN) == SEAL.handle(AN) != SEAL.handle(OTHER)
    assert "k" * 8 not in repr(SEAL)


async def test_forgetting_a_citizen_deletes_their_notifications_and_choice(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    await _put(engine, _consent_notice(AN), clock)
    await _put(engine, _consent_notice(OTHER), clock)
    await _dispatcher(engine, Channel(), clock).once()  # delivered ones go too
    await set_read_digest(engine, SEAL, AN, True)
    async with engine.begin() as conn:
        assert await forget_recipient(conn, SEAL, AN) == 2  # the notification, the opt-in
    assert [r.recipient for r in await _rows(engine)] == [_consent_notice(OTHER).recipient]
    assert not await read_digest_enabled(engine, SEAL, AN)


async def test_settled_notifications_are_deleted_after_their_keeping_time(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    await _put(engine, _consent_notice(AN), clock)
    await _dispatcher(engine, Channel(), clock, keep_days=30).once()
    clock.advance(29 * 86_400)
    await _put(engine, _consent_notice(OTHER), clock)  # pending: never deleted
    await _dispatcher(engine, Channel(*[503] * 5), clock, keep_days=30).once()
    assert len(await _rows(engine)) == 2
    clock.advance(2 * 86_400)
    dispatcher = _dispatcher(engine, Channel(*[503] * 5), clock, keep_days=1)
    await dispatcher.once()
    [left] = await _rows(engine)
    assert (left.recipient, left.status) == (_consent_notice(OTHER).recipient, "pending")


async def test_a_failing_job_does_not_stop_the_deliveries(engine: AsyncEngine) -> None:
    async def broken(now: datetime.datetime) -> None:
        raise RuntimeError("the digest's query failed")

    clock = Clock()
    await _put(engine, _consent_notice(), clock)
    assert await _dispatcher(engine, Channel(), clock, jobs=[broken]).once() == 1


async def test_a_row_no_text_can_be_made_of_fails_alone_and_the_rest_is_delivered(
    engine: AsyncEngine,
) -> None:
    """A kind of another version (a rolling deploy) is settled failed, never retried
    first for ever; a failed row keeps no sealed id."""
    clock, channel = Clock(), Channel()
    await _put(engine, _consent_notice(AN), clock)
    async with engine.begin() as conn:
        await conn.execute(
            notifications.update().values(kind="from_the_future", next_attempt_at=T0)
        )
    await _put(engine, _consent_notice(OTHER), clock)
    assert await _dispatcher(engine, channel, clock).once() == 1
    rows = {r.kind: r for r in await _rows(engine)}
    assert (rows["from_the_future"].status, rows["from_the_future"].last_error) == (
        "failed",
        "unrenderable",
    )
    assert rows["from_the_future"].sealed_recipient is None
    assert rows["consent_requested"].status == "delivered"
    assert len(channel.requests) == 1


async def test_a_citizen_held_only_by_an_opt_in_is_forgotten(engine: AsyncEngine) -> None:
    from gateway.errors import NotFound
    from gateway.records import forget
    from policies import load_catalogue

    catalogue = load_catalogue()

    async def forget_an() -> Any:
        return await forget(
            engine,
            AN,
            catalogue=catalogue,
            default_days=30,
            operator="operator-1",
            pseudonym_key=b"p" * 32,
            also=lambda conn: forget_recipient(conn, SEAL, AN),
        )

    with pytest.raises(NotFound):
        await forget_an()  # nothing held
    await set_read_digest(engine, SEAL, AN, True)
    done = await forget_an()
    assert done.records == 0
    assert not await read_digest_enabled(engine, SEAL, AN)
    with pytest.raises(NotFound):
        await forget_an()  # forgotten already
