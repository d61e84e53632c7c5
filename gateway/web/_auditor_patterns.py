"""Patterns worth a look in the access records, and the questions citizens raised."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.web._consoles import console_page
from gateway.web._sessions import BrowserAuditor

__all__ = ["auditor_patterns_router"]


def auditor_patterns_router() -> APIRouter:
    """The pages under `/kiem-tra`."""
    router = APIRouter(prefix="/kiem-tra", include_in_schema=False)

    @router.get("/dau-hieu")
    async def home(request: Request, session: BrowserAuditor) -> Response:
        return console_page(
            request, session, "auditor/patterns.html", role="auditor", active="patterns"
        )

    return router
