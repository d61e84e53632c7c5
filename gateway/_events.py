"""Recording what staff and citizens do outside GraphQL (consent answers, admin actions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from gateway.recorder import Event

if TYPE_CHECKING:
    from gateway.app import GatewayState

__all__ = ["record_action"]


async def record_action(
    request: Request,
    *,
    type: str,
    outcome: str,
    envelope: dict[str, Any],
    personal: dict[str, Any],
    subjects: Sequence[str] = (),
    client_id: str | None = None,
    procedure: str | None = None,
) -> None:
    """Commit one event before the response is sent (raises `AuditUnavailable`)."""
    state: GatewayState = request.app.state.gateway
    await state.recorder.record(
        Event(
            type=type,
            request_id=getattr(request.state, "request_id", None) or "",
            outcome=outcome,
            policy_version=state.catalogue.version,
            envelope=envelope,
            personal=personal,
            subjects=subjects,
            client_id=client_id,
            procedure=procedure,
        )
    )
