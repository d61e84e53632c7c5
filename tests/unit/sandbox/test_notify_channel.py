"""The sandbox notification channel: keeps each notification once by its idempotency
key, lists them, survives a restart with its file, and plays a channel that is down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from sandbox.notify import NotificationStore, create_app

AN = "079203001234"


def _notice(key: str = "a" * 32) -> dict[str, Any]:
    return {
        "id": key,
        "kind": "consent_requested",
        "recipient": {"type": "citizen", "personalId": AN},
        "title": {"vi": "Có yêu cầu <đồng ý>", "en": "A request"},
        "text": {"vi": "Trả lời trước ...", "en": "Answer by ..."},
        "link": "https://gateway.example/toi/dong-y",
        "createdAt": "2026-12-06T03:00:00Z",
    }


def _client(app: Any, host: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://channel")


async def test_a_notification_is_kept_once_by_its_key(tmp_path: Path) -> None:
    store = tmp_path / "notifications.jsonl"
    async with _client(create_app(NotificationStore(store))) as http:
        first = await http.post(
            "/notifications", json=_notice(), headers={"Idempotency-Key": "a" * 32}
        )
        again = await http.post(
            "/notifications", json=_notice(), headers={"Idempotency-Key": "a" * 32}
        )
        assert (first.status_code, first.json()["duplicate"]) == (201, False)
        assert (again.status_code, again.json()["duplicate"]) == (200, True)
        [kept] = (await http.get("/notifications", params={"recipient": AN})).json()
        assert kept["received"] == 2
        assert (await http.get("/notifications", params={"kind": "breaker_open"})).json() == []
        page = (await http.get("/")).text
        assert "Công dân …1234" in page
        assert AN not in page
        assert "&lt;đồng ý&gt;" in page
        wrong = await http.post("/notifications", json=_notice(), headers={"Idempotency-Key": "b"})
        assert wrong.status_code == 400
        unkeyed = await http.post("/notifications", json=_notice())
        assert unkeyed.status_code == 400
    # Started again on its file, it has what it kept and knows its keys.
    async with _client(create_app(NotificationStore(store))) as http:
        again = await http.post(
            "/notifications", json=_notice(), headers={"Idempotency-Key": "a" * 32}
        )
        assert again.json()["duplicate"] is True
        assert len((await http.get("/notifications")).json()) == 1


async def test_it_plays_a_channel_that_is_down_for_loopback_callers_only() -> None:
    app = create_app()
    async with _client(app, host="203.0.113.9") as remote:
        assert (await remote.post("/_sandbox/outage", json={"down": True})).status_code == 403
    async with _client(app) as http:
        assert (await http.post("/_sandbox/outage", json={"down": True})).json() == {"down": True}
        down = await http.post(
            "/notifications", json=_notice(), headers={"Idempotency-Key": "a" * 32}
        )
        assert down.status_code == 503
        await http.post("/_sandbox/outage", json={"down": False})
        up = await http.post(
            "/notifications", json=_notice(), headers={"Idempotency-Key": "a" * 32}
        )
        assert up.status_code == 201
