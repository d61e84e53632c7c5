"""The web room: the FastAPI application and everything that speaks HTTP to callers.

`create_app(settings)` builds one gateway: GraphQL over HTTP at `/graphql` (admission,
execution, recording, receipts), the citizens' (`/me`), auditors' (`/audit`) and
operators' (`/admin`) routes, the public log (`/log`), health and metrics, the query
page, and the middleware that gives every request its id. The top of the request path:
only the command line is above it.
"""

from gateway.web._app import (
    create_app,
    create_app_from_environment,
    preflight,
    tune_collector,
)
from gateway.web._demo_tokens import DEMO_CLIENT
from gateway.web._sessions import (
    BrowserCitizen,
    BrowserCitizenLevel2,
    BrowserSession,
    BrowserStaff,
    CsrfFailed,
    SignInRequired,
    browser_session,
    check_csrf,
)
from gateway.web._signin import (
    AgencyAdminIdentity,
    AuditorIdentity,
    CitizenIdentity,
    CurrentIdentity,
    Level2Citizen,
    OperatorIdentity,
    current_identity,
    require_citizen,
    require_role,
)

__all__ = [
    "DEMO_CLIENT",
    "AgencyAdminIdentity",
    "AuditorIdentity",
    "BrowserCitizen",
    "BrowserCitizenLevel2",
    "BrowserSession",
    "BrowserStaff",
    "CitizenIdentity",
    "CsrfFailed",
    "CurrentIdentity",
    "Level2Citizen",
    "OperatorIdentity",
    "SignInRequired",
    "browser_session",
    "check_csrf",
    "create_app",
    "create_app_from_environment",
    "current_identity",
    "preflight",
    "require_citizen",
    "require_role",
    "tune_collector",
]
