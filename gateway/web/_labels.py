"""Plain-language labels of the canonical schema and the catalogue's legal documents.

The labels are msgids of the translation catalogue (English, see `_i18n`); `N_` only
marks them for `make translations` and translates nothing here.
"""

from __future__ import annotations

__all__ = ["ENUM_LABELS", "FIELD_LABELS", "LEGAL_DOCUMENTS", "NESTED_LABELS", "N_"]


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for a deferred msgid
    """Mark `message` for extraction; it is translated where it is shown."""
    return message


# Top-level fields of every canonical type: "Type.field" -> msgid.
FIELD_LABELS: dict[str, str] = {
    "Citizen.personalId": N_("Personal ID number"),
    "Citizen.fullName": N_("Full name"),
    "Citizen.otherNames": N_("Other names"),
    "Citizen.birthDate": N_("Date of birth"),
    "Citizen.gender": N_("Gender"),
    "Citizen.birthRegistrationPlace": N_("Place of birth registration"),
    "Citizen.hometown": N_("Hometown"),
    "Citizen.ethnicity": N_("Ethnicity"),
    "Citizen.religion": N_("Religion"),
    "Citizen.nationality": N_("Nationality"),
    "Citizen.bloodType": N_("Blood type"),
    "Citizen.legacyIdNumber": N_("Old 9-digit ID card number"),
    "Citizen.maritalStatus": N_("Marital status"),
    "Citizen.permanentResidence": N_("Permanent residence"),
    "Citizen.temporaryResidence": N_("Temporary residence"),
    "Citizen.currentResidence": N_("Current residence"),
    "Citizen.temporaryAbsence": N_("Temporary absence"),
    "Citizen.household": N_("Household"),
    "Citizen.relationToHead": N_("Relation to the household head"),
    "Citizen.father": N_("Father"),
    "Citizen.mother": N_("Mother"),
    "Citizen.spouse": N_("Spouse"),
    "Citizen.legalRepresentative": N_("Legal representative"),
    "Citizen.children": N_("Children"),
    "Citizen.represented": N_("Persons represented"),
    "Citizen.phone": N_("Phone number"),
    "Citizen.email": N_("E-mail address"),
    "Citizen.vitalStatus": N_("Alive, deceased or missing"),
    "Citizen.deathDate": N_("Date of death"),
    "Household.householdId": N_("Household number"),
    "Household.head": N_("Household head"),
    "Household.address": N_("Address"),
    "Household.members": N_("Household members"),
    "Business.enterpriseCode": N_("Enterprise code"),
    "Business.name": N_("Name of the enterprise"),
    "Business.foreignName": N_("Name in a foreign language"),
    "Business.shortName": N_("Abbreviated name"),
    "Business.legalForm": N_("Type of enterprise"),
    "Business.registrationDate": N_("Date of first registration"),
    "Business.status": N_("Operating status"),
    "Business.headOffice": N_("Head office"),
    "Business.charterCapital": N_("Charter capital"),
    "Business.mainIndustry": N_("Main line of business"),
    "Business.legalRepresentative": N_("Legal representative of the enterprise"),
    "Business.legalRepresentativeTitle": N_("Title of the legal representative"),
    "InsuranceRecord.personalId": N_("Personal ID number"),
    "InsuranceRecord.socialInsuranceNumber": N_("Social insurance number"),
    "InsuranceRecord.healthInsurance": N_("Health insurance card"),
    "InsuranceRecord.contributionMonths": N_("Months of social insurance contributions"),
    "InsuranceRecord.employer": N_("Employer"),
    "InsuranceRecord.contributionPeriods": N_("Contribution periods"),
    "LandParcel.parcelId": N_("Land parcel identifier"),
    "LandParcel.wardCode": N_("Ward or commune code"),
    "LandParcel.legacyCommuneCode": N_("Commune code before July 2025"),
    "LandParcel.mapSheetNumber": N_("Map sheet number"),
    "LandParcel.parcelNumber": N_("Parcel number"),
    "LandParcel.areaM2": N_("Area (m²)"),
    "LandParcel.landUse": N_("Land use"),
    "LandParcel.address": N_("Address"),
    "LandParcel.certificateSerial": N_("Certificate serial number"),
    "LandParcel.certificateIssuedOn": N_("Certificate issued on"),
    "LandParcel.holders": N_("Land users and owners"),
    "LandParcel.encumbrances": N_("Security interests and restrictions"),
    "Document.documentId": N_("Document identifier"),
    "Document.kind": N_("Kind of document"),
    "Document.title": N_("Title of the document"),
    "Document.issuer": N_("Issued by"),
    "Document.issuedOn": N_("Issued on"),
    "Document.validUntil": N_("Valid until"),
    "Document.procedureCode": N_("Procedure code"),
    "Document.holder": N_("Holder"),
    "Document.sha256": N_("SHA-256 fingerprint"),
    "Document.signature": N_("Digital signature"),
}

# Fields of nested values, by the field's own name (`...permanentResidence.wardName`).
NESTED_LABELS: dict[str, str] = {
    "address": N_("Address"),
    "algorithm": N_("Algorithm"),
    "cardCode": N_("Card number"),
    "code": N_("Code"),
    "destination": N_("Destination"),
    "detail": N_("House number, street, hamlet"),
    "employer": N_("Employer"),
    "from": N_("From"),
    "fullName": N_("Full name"),
    "head": N_("Household head"),
    "holder": N_("Holder"),
    "householdId": N_("Household number"),
    "keyId": N_("Key identifier"),
    "kind": N_("Kind"),
    "legacyText": N_("Address as written before July 2025"),
    "members": N_("Household members"),
    "name": N_("Name"),
    "nationality": N_("Nationality"),
    "person": N_("Person"),
    "personalId": N_("Personal ID number"),
    "provinceCode": N_("Province code"),
    "provinceName": N_("Province or city"),
    "registeredFacility": N_("Registered health facility"),
    "registeredOn": N_("Registered on"),
    "relationToHead": N_("Relation to the household head"),
    "releasedOn": N_("Released on"),
    "salaryBasis": N_("Salary on which contributions are paid"),
    "status": N_("Status"),
    "taxCode": N_("Tax code"),
    "to": N_("To"),
    "validFrom": N_("Valid from"),
    "validUntil": N_("Valid until"),
    "wardCode": N_("Ward or commune code"),
    "wardName": N_("Ward or commune"),
}

# Every value of every enum of the schema: type -> value -> msgid.
ENUM_LABELS: dict[str, dict[str, str]] = {
    "Gender": {"MALE": N_("Male"), "FEMALE": N_("Female")},
    "BloodType": {
        "A": N_("Blood type A"),
        "B": N_("Blood type B"),
        "AB": N_("Blood type AB"),
        "O": N_("Blood type O"),
    },
    "MaritalStatus": {
        "SINGLE": N_("Not married"),
        "MARRIED": N_("Married"),
        "DIVORCED": N_("Divorced"),
        "WIDOWED": N_("Widowed"),
    },
    "VitalStatus": {
        "ALIVE": N_("Alive"),
        "DECEASED": N_("Deceased"),
        "MISSING": N_("Missing"),
    },
    "BusinessStatus": {
        "ACTIVE": N_("Operating"),
        "SUSPENDED": N_("Business suspended"),
        "DISSOLVING": N_("Being dissolved"),
        "DISSOLVED": N_("Dissolved"),
        "BANKRUPT": N_("Bankrupt"),
    },
    "ConsentStatus": {
        "REQUESTED": N_("Awaiting an answer"),
        "ACTIVE": N_("Consent given"),
        "DENIED": N_("Refused"),
        "REVOKED": N_("Withdrawn"),
        "EXPIRED": N_("Expired"),
    },
    "SignatureStatus": {
        "VERIFIED": N_("Signature verified"),
        "INVALID": N_("Signature invalid"),
        "UNKNOWN_KEY": N_("Signing key unknown"),
    },
}

# The documents the catalogue's legal bases cite, as written there (a test checks that
# every one is listed, so each has a Vietnamese title in the translation catalogue).
LEGAL_DOCUMENTS: tuple[str, ...] = (
    N_("Circular No. 86/2024/TT-BTC on tax registration"),
    N_("Civil Code No. 91/2015/QH13"),
    N_("Criminal Procedure Code No. 101/2015/QH13"),
    N_("Decree No. 101/2024/ND-CP on land registration and certificates"),
    N_("Decree No. 104/2022/ND-CP"),
    N_("Decree No. 123/2015/ND-CP detailing the Law on Civil Status"),
    N_("Decree No. 168/2025/ND-CP on enterprise registration"),
    N_("Decree No. 20/2021/ND-CP on social assistance policies"),
    N_("Decree No. 45/2020/ND-CP on administrative procedures online"),
    N_("Decree No. 63/2024/ND-CP"),
    N_("Decree No. 99/2022/ND-CP on registration of security interests"),
    N_("Land Law No. 31/2024/QH15"),
    N_("Law on Civil Status No. 60/2014/QH13"),
    N_("Law on Construction No. 50/2014/QH13, as amended by Law No. 62/2020/QH14"),
    N_("Law on Education No. 43/2019/QH14"),
    N_("Law on Employment No. 38/2013/QH13"),
    N_("Law on Enterprises No. 59/2020/QH14"),
    N_("Law on Exit and Entry of Vietnamese Citizens No. 49/2019/QH14, as amended"),
    N_("Law on Health Insurance No. 25/2008/QH12, as amended"),
    N_("Law on Identification No. 26/2023/QH15"),
    N_("Law on Judicial Records No. 28/2009/QH12"),
    N_("Law on Marriage and Family No. 52/2014/QH13"),
    N_("Law on Personal Data Protection No. 91/2025/QH15"),
    N_("Law on Residence No. 68/2020/QH14"),
    N_("Law on Road Traffic Order and Safety No. 36/2024/QH15"),
    N_("Law on Social Insurance No. 41/2024/QH15"),
    N_(
        "Regulation on lower and upper secondary enrolment "
        "(circular of the Ministry of Education and Training)"
    ),
    N_("Regulation on primary schools (circular of the Ministry of Education and Training)"),
)
