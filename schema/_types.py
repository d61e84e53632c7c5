"""The canonical types.

Field names follow the domain brief. Every field that policy may deny is nullable; only
the identifier echoed from the query argument is non-null. A field's value may be an
exception instance at run time (no source, source failed, denied): GraphQL then answers
`null` for that field with the exception's `extensions.code`.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from enum import Enum

import strawberry

__all__ = [
    "Address",
    "BloodType",
    "Business",
    "BusinessStatus",
    "Citizen",
    "ContributionPeriod",
    "Document",
    "DocumentSignature",
    "Employer",
    "Encumbrance",
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
    "SignatureStatus",
    "TemporaryAbsence",
    "VitalStatus",
]


@strawberry.enum(description="Sex as recorded in the population database.")
class Gender(Enum):
    MALE = "MALE"
    FEMALE = "FEMALE"


@strawberry.enum
class BloodType(Enum):
    A = "A"
    B = "B"
    AB = "AB"
    O = "O"  # noqa: E741


@strawberry.enum
class MaritalStatus(Enum):
    SINGLE = "SINGLE"
    MARRIED = "MARRIED"
    DIVORCED = "DIVORCED"
    WIDOWED = "WIDOWED"


@strawberry.enum
class VitalStatus(Enum):
    ALIVE = "ALIVE"
    DECEASED = "DECEASED"
    MISSING = "MISSING"


@strawberry.enum
class BusinessStatus(Enum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    DISSOLVING = "DISSOLVING"
    DISSOLVED = "DISSOLVED"
    BANKRUPT = "BANKRUPT"


@strawberry.type(description="An address in the administrative units in force since 1 July 2025.")
class Address:
    province_code: int | None = strawberry.field(description="2025 province code, e.g. 79.")
    province_name: str | None
    ward_code: int | None = strawberry.field(description="Commune-level unit code, e.g. 25747.")
    ward_name: str | None
    detail: str | None = strawberry.field(description="House number, street, hamlet.")
    legacy_text: str | None = strawberry.field(
        description="The address as worded before the 2025 reorganisation."
    )
    valid_from: datetime.date | None


@strawberry.type(
    description="A person named in another person's or a business's record: who they are, "
    "no more. It is part of the record it appears in and released with it; reading the "
    "person's own record needs them among the case's subjects."
)
class RelatedPerson:
    personal_id: str | None
    full_name: str | None


@strawberry.type(description="One of the 54 recognised ethnic groups (sensitive data).")
class Ethnicity:
    code: str | None
    name: str | None


@strawberry.type
class TemporaryAbsence:
    from_: datetime.date | None = strawberry.field(name="from")
    to: datetime.date | None
    destination: str | None


@strawberry.type
class HouseholdMember:
    person: RelatedPerson | None
    relation_to_head: str | None


@strawberry.type(description="A household as registered in the population database.")
class Household:
    household_id: str | None
    head: RelatedPerson | None
    address: Address | None
    members: list[HouseholdMember] | None


@strawberry.type(description="A citizen as held in the National Population Database.")
class Citizen:
    personal_id: str = strawberry.field(description="12-digit personal identification number.")
    full_name: str | None
    other_names: list[str] | None
    birth_date: datetime.date | None
    gender: Gender | None
    birth_registration_place: Address | None
    hometown: str | None
    ethnicity: Ethnicity | None
    religion: str | None
    nationality: list[str] | None = strawberry.field(description="ISO 3166 codes.")
    blood_type: BloodType | None
    legacy_id_number: str | None = strawberry.field(description="The old 9-digit id number.")
    marital_status: MaritalStatus | None
    permanent_residence: Address | None
    temporary_residence: Address | None
    current_residence: Address | None
    temporary_absence: TemporaryAbsence | None
    household: Household | None
    relation_to_head: str | None
    father: RelatedPerson | None
    mother: RelatedPerson | None
    spouse: RelatedPerson | None
    legal_representative: RelatedPerson | None
    children: list[RelatedPerson] | None
    represented: list[RelatedPerson] | None
    phone: str | None
    email: str | None
    vital_status: VitalStatus | None
    death_date: datetime.date | None


@strawberry.type(description="An industry of the Vietnam Standard Industrial Classification.")
class Industry:
    code: str | None
    name: str | None


@strawberry.type(description="An enterprise as held in the national business registry.")
class Business:
    enterprise_code: str = strawberry.field(description="10-digit tax code (13 for a branch).")
    name: str | None
    foreign_name: str | None
    short_name: str | None
    legal_form: str | None
    registration_date: datetime.date | None
    status: BusinessStatus | None
    head_office: Address | None
    charter_capital: Decimal | None = strawberry.field(description="In Vietnamese đồng.")
    main_industry: Industry | None
    legal_representative: RelatedPerson | None
    legal_representative_title: str | None


@strawberry.type(
    description="A right registered against a land parcel, such as a mortgage (thế chấp)."
)
class Encumbrance:
    kind: str | None = strawberry.field(description="What is registered, e.g. Thế chấp.")
    holder: str | None = strawberry.field(description="In whose favour: a bank, a creditor.")
    registered_on: datetime.date | None
    released_on: datetime.date | None = strawberry.field(
        description="When it was struck off the register; null while it stands."
    )


@strawberry.type(description="A land parcel from the land registry.")
class LandParcel:
    parcel_id: str | None
    ward_code: int | None
    legacy_commune_code: int | None
    map_sheet_number: str | None
    parcel_number: str | None
    area_m2: float | None
    land_use: str | None
    address: Address | None
    certificate_serial: str | None
    certificate_issued_on: datetime.date | None
    holders: list[RelatedPerson] | None
    encumbrances: list[Encumbrance] | None


@strawberry.type
class HealthInsurance:
    card_code: str | None
    valid_from: datetime.date | None
    valid_until: datetime.date | None
    registered_facility: str | None


@strawberry.type(description="An employer as the insurance agency records it.")
class Employer:
    tax_code: str | None = strawberry.field(description="The enterprise's tax code.")
    name: str | None


@strawberry.type(description="A period of social insurance contributions with one employer.")
class ContributionPeriod:
    employer: Employer | None
    from_: datetime.date | None = strawberry.field(
        name="from", description="The first day of the first month contributed."
    )
    to: datetime.date | None = strawberry.field(
        description="The last day of the last month contributed; null while it goes on."
    )
    salary_basis: int | None = strawberry.field(
        default=None, description="The monthly salary contributions are based on, in VND."
    )


@strawberry.type(description="Social and health insurance as held by the insurance agency.")
class InsuranceRecord:
    personal_id: str
    social_insurance_number: str | None
    health_insurance: HealthInsurance | None
    contribution_months: int | None
    employer: str | None
    contribution_periods: list[ContributionPeriod] | None = strawberry.field(
        default=None, description="Contributions with each employer, oldest first."
    )


@strawberry.enum(description="Whether a digitized result is as its issuer signed it.")
class SignatureStatus(Enum):
    VERIFIED = "VERIFIED"
    INVALID = strawberry.enum_value(
        "INVALID", description="The signature, the file or the metadata does not match."
    )
    UNKNOWN_KEY = strawberry.enum_value(
        "UNKNOWN_KEY", description="Signed with a key the issuer does not publish."
    )


@strawberry.type(
    description="The issuer's signature on a digitized result, as the gateway checked it. "
    "Only a VERIFIED document's other fields are served; any other status withholds "
    "them with DOCUMENT_SIGNATURE_INVALID."
)
class DocumentSignature:
    status: SignatureStatus | None
    key_id: str | None = strawberry.field(description="The issuer's key (JWK thumbprint).")
    algorithm: str | None


@strawberry.type(description="A digitized result of a procedure: a certificate, a licence.")
class Document:
    document_id: str | None
    kind: str | None
    title: str | None
    issuer: str | None
    issued_on: datetime.date | None
    valid_until: datetime.date | None
    procedure_code: str | None
    holder: RelatedPerson | None
    sha256: str | None = strawberry.field(description="Hash of the signed file.")
    signature: DocumentSignature | None = strawberry.field(
        default=None, description="The issuer's signature, checked by the gateway."
    )
