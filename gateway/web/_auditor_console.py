"""The auditor's console:
search the access records, read an envelope, export with proofs and verify the export in the page.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.web._consoles import console_page
from gateway.web._sessions import BrowserAuditor

__all__ = ["auditor_console_router"]


def auditor_console_router() -> APIRouter:
    """The pages under `/kiem-tra`."""
    router = APIRouter(prefix="/kiem-tra", include_in_schema=False)

    @router.get("")
    async def home(request: Request, session: BrowserAuditor) -> Response:
        return console_page(
            request, session, "auditor/search.html", role="auditor", active="search"
        )

    return router
