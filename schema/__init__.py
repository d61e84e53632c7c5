"""The canonical schema: types every source is mapped to, and the root query."""

from schema._build import build
from schema._consent import Consent, ConsentStatus, Mutation
from schema._context import (
    Access,
    ConsentRequests,
    DecisionRecord,
    RateLimit,
    RequestContext,
    Services,
    SubjectDecision,
)
from schema._introspection import only_introspection
from schema._prefill import Prefill
from schema._query import Query
from schema._schema import SDL_PATH, SchemaLimits, build_schema, canonical_fields, export_sdl
from schema._selection import Selection, selected_fields, selection
from schema._service import KINDS, EntityKind, Fetched, fetch_records, get_entities, get_list
from schema._types import (
    Address,
    BloodType,
    Business,
    BusinessStatus,
    Citizen,
    Document,
    Ethnicity,
    Gender,
    HealthInsurance,
    Household,
    HouseholdMember,
    Industry,
    InsuranceRecord,
    LandParcel,
    MaritalStatus,
    RelatedPerson,
    TemporaryAbsence,
    VitalStatus,
)

__all__ = [
    "KINDS",
    "SDL_PATH",
    "Access",
    "Address",
    "BloodType",
    "Business",
    "BusinessStatus",
    "Citizen",
    "Consent",
    "ConsentRequests",
    "ConsentStatus",
    "DecisionRecord",
    "Document",
    "EntityKind",
    "Ethnicity",
    "Fetched",
    "Gender",
    "HealthInsurance",
    "Household",
    "HouseholdMember",
    "Industry",
    "InsuranceRecord",
    "LandParcel",
    "MaritalStatus",
    "Mutation",
    "Prefill",
    "Query",
    "RateLimit",
    "RelatedPerson",
    "RequestContext",
    "SchemaLimits",
    "Selection",
    "Services",
    "SubjectDecision",
    "TemporaryAbsence",
    "VitalStatus",
    "build",
    "build_schema",
    "canonical_fields",
    "export_sdl",
    "fetch_records",
    "get_entities",
    "get_list",
    "only_introspection",
    "selected_fields",
    "selection",
]
