"""What the running gateway holds between requests, and how a route gets it.

`create_app` builds one `GatewayState` when the application starts; a route asks for
it with the `State` dependency (`async def route(state: State)`), and plain Starlette
handlers with `app_state(request)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import httpx
from fastapi import Depends
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection

from connectors import ConnectorRegistry
from gateway.admission import Admission, ClientRegistry, IdentityVerifier
from gateway.config import GatewaySettings
from gateway.log.store import TransparencyLog
from gateway.records import ConsentStore, EventRecorder
from keys import KeyRing
from policies import Catalogue
from schema import Services

__all__ = ["GatewayState", "State", "app_state"]


@dataclass(slots=True)
class GatewayState:
    """What the running gateway holds between requests."""

    settings: GatewaySettings
    engine: AsyncEngine
    http: httpx.AsyncClient
    keyring: KeyRing
    registry: ConnectorRegistry
    catalogue: Catalogue
    clients: ClientRegistry
    consents: ConsentStore
    recorder: EventRecorder
    admission: Admission
    services: Services
    identity: IdentityVerifier | None
    log: TransparencyLog
    pseudonym_key: bytes = field(repr=False)
    connector_versions: dict[str, int] = field(default_factory=dict)
    redis: Redis | None = None


def app_state(connection: HTTPConnection) -> GatewayState:
    """The state of the application serving `connection` (a request)."""
    state: GatewayState = connection.app.state.gateway
    return state


State = Annotated[GatewayState, Depends(app_state)]
"""A route's parameter `state: State` is the gateway's state."""
