"""The operator's dashboard (the IOC view):
figures over time, sources, the log, clients, approvals.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.web._consoles import console_page
from gateway.web._sessions import BrowserOperator

__all__ = ["operator_console_router"]


def operator_console_router() -> APIRouter:
    """The pages under `/van-hanh`."""
    router = APIRouter(prefix="/van-hanh", include_in_schema=False)

    @router.get("")
    async def home(request: Request, session: BrowserOperator) -> Response:
        return console_page(
            request, session, "operator/overview.html", role="operator", active="overview"
        )

    return router
