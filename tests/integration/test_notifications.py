"""Notifications, end to end: the outbox, the dispatcher and the sandbox channel over HTTP.

Each test runs a gateway of its own whose `GATEWAY_NOTIFY_URL` is a sandbox channel
(`sandbox.notify`) in a server thread, on a database of its own (it counts the outbox).
"""

from __future__ import annotations

import asyncio
import datetime
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gateway.instants import VIETNAM
from gateway.notifications import RecipientSeal, enqueue_read_digests
from gateway.resources import load_pseudonym_key
from gateway.storage import create_engine, notifications
from sandbox import notify
from tests.integration.conftest import ServerThread

pytestmark = pytest.mark.own_database

RESIDENCE = "1.004222"
REQUEST = """mutation($subject: String!, $until: DateTime!) {
  requestConsent(subject: $subject, procedure: "1.004222", fields: ["Citizen.phone"],
                 validUntil: $until) { id status }
}"""


class Channel:
    """The sandbox notification channel, read and switched over HTTP."""

    def __init__(self, server: ServerThread) -> None:
        self.server = server
        self.url = server.url

    async def received(self, **filters: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient() as http:
            found: list[dict[str, Any]] = (
                await http.get(f"{self.url}/notifications", params=filters)
            ).json()
        return found

    async def wait_for(self, count: int = 1, **filters: str) -> list[dict[str, Any]]:
        """What it has for `filters` once it has `count` (10 s at most)."""
        for _ in range(100):
            found = await self.received(**filters)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"the channel has {len(found)} of {count} notifications {filters}")

    async def down(self, down: bool) -> None:
        async with httpx.AsyncClient() as http:
            answer = await http.post(f"{self.url}/_sandbox/outage", json={"down": down})
        assert answer.json() == {"down": down}


@pytest.fixture
def channel() -> Iterator[Channel]:
    server = ServerThread(notify.create_app()).start()
    yield Channel(server)
    server.stop()


def _notifying(gateway_factory: Any, channel: Channel, **overrides: Any) -> Any:
    return gateway_factory.start(
        notify_url=f"{channel.url}/notifications",
        notify_interval=0.2,
        notify_retry_seconds=0.3,
        notify_retry_max_seconds=0.6,
        **overrides,
    )


async def _outbox(gateway: Any) -> list[Any]:
    engine = create_engine(gateway.settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(sa.select(notifications))).all())
    finally:
        await engine.dispose()


async def _request_consent(gateway: Any, person: str) -> str:
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)
    response = await gateway.post(
        REQUEST, {"subject": person, "until": until.isoformat()}, procedure=RESIDENCE
    )
    body = response.json()
    assert body["data"]["requestConsent"]["status"] == "REQUESTED", body
    return str(body["data"]["requestConsent"]["id"])


async def test_a_consent_request_is_told_to_the_citizen(
    gateway_factory: Any, channel: Channel, dataset: Any
) -> None:
    gateway = _notifying(gateway_factory, channel)
    person = dataset.sample.citizens[0]
    consent = await _request_consent(gateway, person)

    [told] = await channel.wait_for(recipient=person)
    assert told["kind"] == "consent_requested"
    assert told["recipient"] == {"type": "citizen", "personalId": person}
    assert told["data"]["consent"] == consent
    assert told["data"]["procedure"] == RESIDENCE
    assert told["link"] == f"{gateway.settings.origin}/toi/dong-y"
    assert "Trả lời trước" in told["text"]["vi"]
    assert told["received"] == 1

    # The outbox never holds the id in clear, and forgets the sealed one once delivered.
    for _ in range(50):
        [row] = await _outbox(gateway)
        if row.status == "delivered":
            break
        await asyncio.sleep(0.1)
    assert row.status == "delivered"
    assert row.id == told["id"]
    assert row.sealed_recipient is None
    assert person not in row.recipient
    assert person not in str(row.payload)


async def test_the_channel_down_delays_delivery_without_losing_or_repeating_it(
    gateway_factory: Any, channel: Channel, dataset: Any
) -> None:
    await channel.down(True)
    gateway = _notifying(gateway_factory, channel)
    person = dataset.sample.citizens[1]
    await _request_consent(gateway, person)

    for _ in range(100):
        [row] = await _outbox(gateway)
        if row.attempts >= 2:
            break
        await asyncio.sleep(0.1)
    assert (row.status, row.last_error) == ("pending", "http_503")
    assert row.sealed_recipient is not None
    assert await channel.received(recipient=person) == []

    # Stopped while the channel is down, a gateway leaves the notification pending; the
    # next one to start delivers it once the channel is back.
    gateway.server.stop()
    await channel.down(False)
    again = _notifying(gateway_factory, channel)
    [told] = await channel.wait_for(recipient=person)
    assert told["id"] == row.id
    for _ in range(50):
        [row] = await _outbox(again)
        if row.status == "delivered":
            break
        await asyncio.sleep(0.1)
    assert row.status == "delivered"
    assert row.attempts >= 3

    # Sent again (a replica stopped between the channel's answer and the mark), it is
    # kept once: the channel knows its idempotency key.
    seal = RecipientSeal(load_pseudonym_key(again.settings))
    engine = create_engine(again.settings.database_url.get_secret_value())
    try:
        async with engine.begin() as conn:
            await conn.execute(
                notifications.update().values(
                    status="pending", sealed_recipient=seal.seal(person, row.id)
                )
            )
    finally:
        await engine.dispose()
    for _ in range(50):
        [kept] = await channel.received(recipient=person)
        if kept["received"] == 2:
            break
        await asyncio.sleep(0.1)
    assert kept["id"] == row.id
    assert kept["received"] == 2


async def test_a_daily_digest_goes_only_to_citizens_who_asked_for_it(
    gateway_factory: Any, channel: Channel, dataset: Any, sign_in: Any
) -> None:
    gateway = _notifying(gateway_factory, channel)
    asked, silent = dataset.sample.citizens[2], dataset.sample.citizens[3]
    async with gateway.client(auth=None) as http:
        token = await sign_in.citizen(asked, level=2)
        assert (await http.get("/me/notifications", headers=token)).json() == {"readDigest": False}
        chosen = await http.put("/me/notifications", headers=token, json={"readDigest": True})
        assert chosen.json() == {"readDigest": True}
        assert (await http.get("/me/notifications", headers=token)).json() == {"readDigest": True}
        weak = await sign_in.citizen(asked, level=1)
        refused = await http.put("/me/notifications", headers=weak, json={"readDigest": False})
        assert refused.status_code == 403
    for person in (asked, asked, silent):
        response = await gateway.post(f'{{ citizen(personalId: "{person}") {{ fullName }} }}')
        assert response.status_code == 200, response.text

    # The day is given: today's reads are digested now rather than after midnight.
    today = datetime.datetime.now(VIETNAM).date()
    seal = RecipientSeal(load_pseudonym_key(gateway.settings))
    engine = create_engine(gateway.settings.database_url.get_secret_value())
    try:
        assert await enqueue_read_digests(engine, seal, today) == 1
        assert await enqueue_read_digests(engine, seal, today) == 0  # once a day
        yesterday = today - datetime.timedelta(days=1)
        assert await enqueue_read_digests(engine, seal, yesterday) == 0  # no reads then
    finally:
        await engine.dispose()

    [digest] = await channel.wait_for(recipient=asked)
    assert digest["kind"] == "read_digest"
    assert digest["data"]["count"] == 2
    assert digest["data"]["day"] == today.isoformat()
    assert [o["count"] for o in digest["data"]["organisations"]] == [2]
    assert digest["link"] == (
        f"{gateway.settings.origin}/toi?from={today.isoformat()}&to={today.isoformat()}"
    )
    assert "2 lần" in digest["title"]["vi"]
    await asyncio.sleep(0.5)
    assert await channel.received(recipient=silent) == []
    assert len(await channel.received(recipient=asked)) == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_a_breaker_that_stays_open_is_told_to_its_agency_once(
    gateway_factory: Any, channel: Channel, dataset: Any
) -> None:
    gateway = _notifying(
        gateway_factory,
        channel,
        connector_urls={"population": f"http://127.0.0.1:{_closed_port()}"},
        notify_breaker_seconds=1.0,
    )
    person = dataset.sample.citizens[4]
    # Reads go on failing while the breaker is open: each is one request, not a notice.
    for _ in range(12):
        response = await gateway.post(f'{{ citizen(personalId: "{person}") {{ fullName }} }}')
        assert response.status_code == 200
        await asyncio.sleep(0.25)
    [told] = await channel.wait_for(recipient="VN/GOV/BCA")
    assert told["kind"] == "breaker_open"
    assert told["recipient"] == {"type": "agency_admins", "organisation": "VN/GOV/BCA"}
    assert told["data"]["connector"] == "population"
    assert told["link"].endswith("/co-quan/ket-noi/population")
    for _ in range(8):
        await gateway.post(f'{{ citizen(personalId: "{person}") {{ fullName }} }}')
        await asyncio.sleep(0.25)
    assert len(await channel.received(recipient="VN/GOV/BCA")) == 1
