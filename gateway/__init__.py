"""The data-sharing gateway: a purpose-bound GraphQL gateway over agencies' databases.

`create_app(settings)` builds the ASGI application. The public API is loaded lazily so
that lower layers (`connectors`, `schema`) can import `gateway.errors` without pulling
in the application and creating an import cycle.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.app import GatewayState, create_app
    from gateway.config import GatewaySettings

__all__ = ["GatewaySettings", "GatewayState", "create_app"]

_WHERE = {
    "GatewaySettings": "gateway.config",
    "GatewayState": "gateway.app",
    "create_app": "gateway.app",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'gateway' has no attribute {name!r}")
