"""Senders: how a notification leaves the gateway.

A sender is a plug-in (`NotificationSender`): production plugs in the national
notification channel, which addresses a citizen by their personal id (it knows their
app and phone: the gateway stores neither) and an agency's administrators by the
organisation's code. `HttpSender` POSTs each notification as JSON to one URL, with its
id as `Idempotency-Key`: a channel that already has that key answers as it did and
keeps it once (the sandbox channel, `python -m sandbox notify`, does).

A sender raises `DeliveryFailed` when the channel did not take the notification:
`retriable` for what may pass (unreachable, a timeout, 429, 5xx), not for a refusal
(another 4xx), which is kept as failed without more attempts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import orjson

__all__ = ["Delivery", "DeliveryFailed", "HttpSender", "NotificationSender"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A notification as the sender gets it: the facts, the words, whom to tell."""

    id: str
    kind: str
    recipient: Mapping[str, str] = field(repr=False)
    """`{"type": "citizen", "personalId": ...}` or `{"type": "agency_admins",
    "organisation": ...}`."""
    title: Mapping[str, str]
    text: Mapping[str, str] = field(repr=False)
    link: str
    data: Mapping[str, Any] = field(repr=False)
    created_at: str

    def body(self) -> dict[str, Any]:
        """The JSON the HTTP sender posts."""
        return {
            "id": self.id,
            "kind": self.kind,
            "recipient": dict(self.recipient),
            "title": dict(self.title),
            "text": dict(self.text),
            "link": self.link,
            "data": dict(self.data),
            "createdAt": self.created_at,
        }


class DeliveryFailed(Exception):
    """The channel did not take the notification; `code` says why, without content."""

    def __init__(self, code: str, *, retriable: bool) -> None:
        super().__init__(code)
        self.code = code
        self.retriable = retriable


class NotificationSender(Protocol):
    """Delivers notifications to a channel; one at a time, each at least once."""

    async def send(self, delivery: Delivery) -> None:
        """Return once the channel took it; else raise `DeliveryFailed`."""
        ...

    async def aclose(self) -> None: ...


class HttpSender:
    """POSTs each notification to `url` as JSON, its id as `Idempotency-Key`."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = url
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._http = http or httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, trust_env=False
        )
        self._own = http is None

    def __repr__(self) -> str:
        return f"HttpSender(url={self._url!r})"

    async def send(self, delivery: Delivery) -> None:
        try:
            response = await self._http.post(
                self._url,
                content=orjson.dumps(delivery.body()),
                headers={**self._headers, "Idempotency-Key": delivery.id},
            )
        except httpx.TimeoutException:
            raise DeliveryFailed("timeout", retriable=True) from None
        except httpx.HTTPError:
            raise DeliveryFailed("unreachable", retriable=True) from None
        status = response.status_code
        if 200 <= status < 300:
            return
        retriable = status == 429 or status >= 500 or status == 408
        raise DeliveryFailed(f"http_{status}", retriable=retriable)

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()
