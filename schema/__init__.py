"""The canonical schema: types every source is mapped to, and the root query."""

from schema._build import build
from schema._context import RequestContext
from schema._schema import SDL_PATH, SchemaLimits, build_schema, canonical_fields, export_sdl
from schema._selection import selected_fields
from schema._service import KINDS, EntityKind, get_entities, get_list
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
    "Address",
    "BloodType",
    "Business",
    "BusinessStatus",
    "Citizen",
    "Document",
    "EntityKind",
    "Ethnicity",
    "Gender",
    "HealthInsurance",
    "Household",
    "HouseholdMember",
    "Industry",
    "InsuranceRecord",
    "LandParcel",
    "MaritalStatus",
    "RelatedPerson",
    "RequestContext",
    "SchemaLimits",
    "TemporaryAbsence",
    "VitalStatus",
    "build",
    "build_schema",
    "canonical_fields",
    "export_sdl",
    "get_entities",
    "get_list",
    "selected_fields",
]
