"""Errors of the policy layer.

`UnknownProcedure` joins the gateway's error tree (`gateway.errors`): a client named a
procedure the catalogue does not have. `CatalogueError` is a configuration error, raised
at start-up, never in answer to a request.
"""

from __future__ import annotations

from gateway.configfiles import ConfigFileError
from gateway.errors import GatewayError

__all__ = ["CatalogueError", "UnknownProcedure"]


class CatalogueError(ConfigFileError):
    """A procedure catalogue that cannot be used; says which file and line."""


class UnknownProcedure(GatewayError):
    """The purpose names a procedure code that is not in the catalogue."""

    code = "UNKNOWN_PROCEDURE"
    http_status = 400
    default_message = "No such procedure in the catalogue."
