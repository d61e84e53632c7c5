"""What the running gateway holds between requests, and how a route gets it.

`create_app` builds one `GatewayState` when the application starts; a route asks for
it with the `State` dependency (`async def route(state: State)`), and plain Starlette
handlers with `app_state(request)`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

import httpx
from fastapi import Depends
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection

from connectors import ConnectorRegistry
from gateway.admission import Admission, ClientRegistry, IdentityVerifier
from gateway.config import GatewaySettings
from gateway.log import Receipts
from gateway.log.continuity import ContinuityGuard
from gateway.log.store import TransparencyLog
from gateway.notifications import RecipientSeal
from gateway.records import ClientConsentRequests, ConsentStore, EventRecorder
from keys import KeyRing
from policies import Catalogue
from schema import Services

__all__ = ["GatewayState", "LiveRegistry", "State", "app_state"]


class LiveRegistry(Protocol):
    """The connectors in use, replaced without restart (`gateway.web`'s `LiveConnectors`)."""

    @property
    def registry(self) -> ConnectorRegistry:
        """The registry in use now."""
        ...

    @property
    def versions(self) -> Mapping[str, int]:
        """Each connector's version in the registry in use now, by name."""
        ...

    def hold(self) -> AbstractContextManager[Any]:
        """Hold the registry in use for one request (`.registry`, `.versions`)."""
        ...

    def report(self) -> dict[str, Any]:
        """The generation served, and the last one that could not be built (`failure`)."""
        ...

    async def reload(self, *, force: bool = True) -> bool:
        """Serve the connectors the database has in use now; whether it swapped."""
        ...


@dataclass(slots=True)
class GatewayState:
    """What the running gateway holds between requests."""

    settings: GatewaySettings
    engine: AsyncEngine
    http: httpx.AsyncClient
    keyring: KeyRing
    live: LiveRegistry
    catalogue: Catalogue
    clients: ClientRegistry
    consents: ConsentStore
    recorder: EventRecorder
    admission: Admission
    services: Services
    identity: IdentityVerifier | None
    log: TransparencyLog
    pseudonym_key: bytes = field(repr=False)
    notify_seal: RecipientSeal = field(repr=False)
    """Hides citizens' ids in the notifications' outbox and preferences."""
    redis: Redis | None = None
    continuity: ContinuityGuard | None = None
    """The sequencer's guard: why the log signs nothing, when it does not."""
    _receipts: Receipts | None = field(default=None, init=False, repr=False)

    def receipts(self) -> Receipts:
        """What signs answers' receipts: the newest receipt key, the log's origin and
        its merge delay (one object while they stay: a commit sends it once)."""
        key = self.keyring.signing("receipts")
        made = self._receipts
        if (
            made is None
            or made.signer.kid != key.kid
            or made.origin != self.log.origin
            or made.merge_delay != self.settings.merge_delay
        ):
            made = self._receipts = Receipts(key.signer, self.log.origin, self.settings.merge_delay)
        return made

    def services_for(self, catalogue: Catalogue | None) -> Services:
        """What resolvers need, under the catalogue a request was admitted under (the
        one in effect may have changed since)."""
        if catalogue is None or catalogue is self.services.catalogue:
            return self.services
        consents = self.services.consents
        if isinstance(consents, ClientConsentRequests):
            consents = consents.under(catalogue.version)
        return dataclasses.replace(self.services, catalogue=catalogue, consents=consents)

    @property
    def registry(self) -> ConnectorRegistry:
        """The connectors in use now (a request holds its own: `live.hold()`)."""
        return self.live.registry

    @property
    def connector_versions(self) -> Mapping[str, int]:
        """Each connector's version in use now, by name."""
        return self.live.versions


def app_state(connection: HTTPConnection) -> GatewayState:
    """The state of the application serving `connection` (a request)."""
    state: GatewayState = connection.app.state.gateway
    return state


State = Annotated[GatewayState, Depends(app_state)]
"""A route's parameter `state: State` is the gateway's state."""
