"""Sign-in on the web: FastAPI dependencies that guard routes with an identity.

```
@router.get("/me/accesses")
async def my_accesses(citizen: Level2Citizen) -> ...

@router.get("/audit/events")
async def search(auditor: AuditorIdentity) -> ...
```

The identity comes from the gateway's `IdentityVerifier` (`gateway.admission`). A
missing or bad token is 401 (`UNAUTHENTICATED`, `BAD_SIGNATURE`, `TOKEN_EXPIRED`); a
signed-in identity without the role is 403 `FORBIDDEN`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final

from fastapi import Depends, Request

from gateway.admission import CITIZEN_ROLE, Identity, IdentityVerifier
from gateway.config import GatewaySettings
from gateway.errors import Forbidden, Unauthenticated

__all__ = [
    "AgencyAdminIdentity",
    "AuditorIdentity",
    "CitizenIdentity",
    "CurrentIdentity",
    "Level2Citizen",
    "OperatorIdentity",
    "current_identity",
    "require_citizen",
    "require_role",
]

_NOT_CONFIGURED: Final = "Sign-in is not configured on this gateway."


def _state(request: Request) -> Any:
    """The gateway's state, if the application has one (a bare app in tests may not)."""
    return getattr(request.app.state, "gateway", None)


def _bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if header is None:
        raise Unauthenticated("Sign in, then send Authorization: Bearer <token>.")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("Send the token as Authorization: Bearer <token>.")
    return token


async def current_identity(request: Request) -> Identity:
    """FastAPI dependency: the identity of the request's bearer token.

    Uses the verifier at `request.app.state.gateway.identity`; without one, every
    guarded route answers 401 saying sign-in is not configured.
    """
    verifier = getattr(_state(request), "identity", None)
    if not isinstance(verifier, IdentityVerifier):
        raise Unauthenticated(_NOT_CONFIGURED)
    return await verifier.verify(_bearer_token(request))


CurrentIdentity = Annotated[Identity, Depends(current_identity)]
"""Any signed-in identity, citizen or staff."""


def require_role(*roles: str) -> Callable[..., Awaitable[Identity]]:
    """A dependency that passes identities with at least one of `roles`, else 403."""
    if not roles:
        raise ValueError("require_role needs at least one role")
    wanted = frozenset(roles)
    needed = " or ".join(sorted(wanted))

    async def has_role(identity: CurrentIdentity) -> Identity:
        if identity.roles.isdisjoint(wanted):
            raise Forbidden(f"This needs the role {needed}.", required=sorted(wanted))
        return identity

    return has_role


def require_citizen(level2: bool = False) -> Callable[..., Awaitable[Identity]]:
    """A dependency that passes citizens (with `level2`: only of level 2), else 403.

    Level 2 means an `acr` listed in the gateway's `oidc_level2_acr` setting.
    """

    async def is_citizen(request: Request, identity: CurrentIdentity) -> Identity:
        if not identity.is_citizen:
            raise Forbidden("Sign in as a citizen to do this.", required=[CITIZEN_ROLE])
        if level2:
            settings = getattr(_state(request), "settings", None)
            accepted = settings.oidc_level2_acr if isinstance(settings, GatewaySettings) else ()
            if not identity.has_level2(accepted):
                raise Forbidden("This needs a sign-in of level 2 (VNeID level 2).")
        return identity

    return is_citizen


CitizenIdentity = Annotated[Identity, Depends(require_citizen())]
"""A signed-in citizen, of any level."""
Level2Citizen = Annotated[Identity, Depends(require_citizen(level2=True))]
"""A citizen signed in at level 2 (needed to grant consent)."""
AuditorIdentity = Annotated[Identity, Depends(require_role("auditor"))]
OperatorIdentity = Annotated[Identity, Depends(require_role("operator"))]
AgencyAdminIdentity = Annotated[Identity, Depends(require_role("agency_admin"))]
