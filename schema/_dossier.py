"""The dossier (hồ sơ) of a case, as the dossier registry holds it.

The one-stop shop's procedure-handling system keeps every case as a dossier: its
code, the procedure, the organisation that received it and those it was assigned to,
its status and dates, and the persons it concerns. The gateway reads it through any
connector serving the `Dossier` kind, to confirm a request's case before deciding
anything (`gateway.admission`); clients never query it, so it is not in the GraphQL
schema, only in the canonical kinds connectors map to (`connector_fields`).
"""

from __future__ import annotations

import datetime
from typing import Any

import strawberry

from policies import DossierStatus
from schema._build import canonical_tree

__all__ = ["Dossier", "DossierPerson", "dossier_tree"]


strawberry.enum(
    DossierStatus, description="Where a dossier stands at the procedure-handling system."
)


@strawberry.type(description="A person (or enterprise, or household) a dossier concerns.")
class DossierPerson:
    identifier: str | None = strawberry.field(
        description="Personal id, enterprise code or household id."
    )
    role: str | None = strawberry.field(
        description="APPLICANT, CO_APPLICANT, or the part the application names them in."
    )


@strawberry.type(description="A case's dossier at the procedure-handling system.")
class Dossier:
    dossier_code: str | None
    procedure_code: str | None
    receiving_organisation: str | None = strawberry.field(
        description="The organisation that received it (`VN/GOV/<org>`): a one-stop desk "
        "may receive dossiers for other agencies."
    )
    handling_organisations: list[str] | None = strawberry.field(
        description="The organisations it was assigned to (`VN/GOV/<org>`)."
    )
    status: DossierStatus | None
    received_on: datetime.date | None
    due_on: datetime.date | None
    persons: list[DossierPerson] | None


def dossier_tree() -> dict[str, Any]:
    """The canonical fields of `Dossier`, for manifests that serve it."""
    return canonical_tree(Dossier)
