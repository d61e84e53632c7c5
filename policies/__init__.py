"""Purpose binding and decisions: the procedure catalogue, legal basis versus consent.

A request's `Purpose` (procedure, case, officer, subjects) is the one value the
gateway decides, fetches, records and shows every read against.

The catalogue (`load_catalogue`) says, per administrative procedure, which agency
kinds run it, on which law, and which canonical fields it may read with `law` or
`consent` as the basis. Policies (`default_policy`) decide one read at a time from it:
they return the basis that allows the read or raise a `PolicyDenied`. The gateway asks
them about every field of every subject before anything is fetched.
"""

from policies._catalogue import (
    CATALOGUE_DIR,
    OPEN_STATUSES,
    SENSITIVE_FIELDS,
    Basis,
    CaseConfirmation,
    Catalogue,
    DossierStatus,
    FieldRule,
    FormField,
    LegalBasis,
    Name,
    Paper,
    Procedure,
    load_catalogue,
)
from policies._consent import CONSENT_STATES, GRANT_VERSION, Consent
from policies._decisions import (
    AccessRequest,
    ActiveConsent,
    AllOf,
    Allowed,
    AnyOf,
    ByConsent,
    ByLaw,
    ClientRunsProcedure,
    Engine,
    FieldInPurpose,
    Policy,
    SubjectInCase,
    UnsafeAllowAll,
    default_policy,
)
from policies._errors import CatalogueError, UnknownProcedure
from policies._purpose import MAX_SUBJECTS, Purpose, parse_hidden_until, purpose_text
from policies._vocabulary import AGENCY_KIND_LABELS, ORGANISATION_NAMES, AgencyKind

__all__ = [
    "AGENCY_KIND_LABELS",
    "CATALOGUE_DIR",
    "CONSENT_STATES",
    "GRANT_VERSION",
    "MAX_SUBJECTS",
    "OPEN_STATUSES",
    "ORGANISATION_NAMES",
    "SENSITIVE_FIELDS",
    "AccessRequest",
    "ActiveConsent",
    "AgencyKind",
    "AllOf",
    "Allowed",
    "AnyOf",
    "Basis",
    "ByConsent",
    "ByLaw",
    "CaseConfirmation",
    "Catalogue",
    "CatalogueError",
    "ClientRunsProcedure",
    "Consent",
    "DossierStatus",
    "Engine",
    "FieldInPurpose",
    "FieldRule",
    "FormField",
    "LegalBasis",
    "Name",
    "Paper",
    "Policy",
    "Procedure",
    "Purpose",
    "SubjectInCase",
    "UnknownProcedure",
    "UnsafeAllowAll",
    "default_policy",
    "load_catalogue",
    "parse_hidden_until",
    "purpose_text",
]
