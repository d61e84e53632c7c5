"""The agency admin's console:
the agency's own connectors, submitting a version, its dry run.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.web._consoles import console_page
from gateway.web._sessions import BrowserAgencyAdmin

__all__ = ["agency_console_router"]


def agency_console_router() -> APIRouter:
    """The pages under `/co-quan`."""
    router = APIRouter(prefix="/co-quan", include_in_schema=False)

    @router.get("")
    async def home(request: Request, session: BrowserAgencyAdmin) -> Response:
        return console_page(
            request, session, "agency/connectors.html", role="agency_admin", active="connectors"
        )

    return router
