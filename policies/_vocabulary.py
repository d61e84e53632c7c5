"""The shared vocabulary of agency kinds, and the names of national bodies.

One list of the kinds of agency that run administrative procedures, used by the
procedure catalogue (which kinds may run a procedure) and by the client registry
(which kind a registered case-handling system belongs to). Both sides must speak the
same words, so the kinds are defined here once.

The kinds follow the two-level local government in force since 1 July 2025: provinces
and communes, no districts (Law 72/2025/QH15). Tasks of the former district level
(civil status with foreign elements, household business registration, building
permits for houses) now sit with commune or provincial bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

__all__ = ["AGENCY_KIND_LABELS", "ORGANISATION_NAMES", "AgencyKind"]


class AgencyKind(StrEnum):
    """A kind of agency that runs procedures; values are stable snake_case ids."""

    COMMUNE_PEOPLES_COMMITTEE = "commune_peoples_committee"
    COMMUNE_POLICE = "commune_police"
    PROVINCIAL_POLICE = "provincial_police"
    PROVINCIAL_JUSTICE_DEPARTMENT = "provincial_justice_department"
    BUSINESS_REGISTRATION_OFFICE = "business_registration_office"
    LAND_REGISTRATION_OFFICE = "land_registration_office"
    SOCIAL_PROTECTION = "social_protection"
    SOCIAL_INSURANCE = "social_insurance"
    TAX_AUTHORITY = "tax_authority"
    EDUCATION = "education"
    CONSTRUCTION_AUTHORITY = "construction_authority"
    TRAFFIC_POLICE = "traffic_police"
    HEALTH = "health"


AGENCY_KIND_LABELS: Mapping[AgencyKind, tuple[str, str]] = MappingProxyType(
    {
        AgencyKind.COMMUNE_PEOPLES_COMMITTEE: (
            "Ủy ban nhân dân cấp xã",
            "Commune-level People's Committee",
        ),
        AgencyKind.COMMUNE_POLICE: (
            "Công an cấp xã",
            "Commune-level police (residence registration)",
        ),
        AgencyKind.PROVINCIAL_POLICE: (
            "Công an cấp tỉnh",
            "Provincial police (judicial record certificates since March 2025)",
        ),
        AgencyKind.PROVINCIAL_JUSTICE_DEPARTMENT: (
            "Sở Tư pháp",
            "Provincial Department of Justice",
        ),
        AgencyKind.BUSINESS_REGISTRATION_OFFICE: (
            "Cơ quan đăng ký kinh doanh",
            "Business registration office",
        ),
        AgencyKind.LAND_REGISTRATION_OFFICE: (
            "Văn phòng đăng ký đất đai",
            "Land registration office",
        ),
        AgencyKind.SOCIAL_PROTECTION: (
            "Cơ quan quản lý bảo trợ xã hội",
            "Social protection agency (social allowances)",
        ),
        AgencyKind.SOCIAL_INSURANCE: (
            "Cơ quan Bảo hiểm xã hội",
            "Social insurance agency (BHXH)",
        ),
        AgencyKind.TAX_AUTHORITY: (
            "Cơ quan thuế",
            "Tax authority",
        ),
        AgencyKind.EDUCATION: (
            "Cơ sở giáo dục, cơ quan quản lý giáo dục",
            "Schools and education offices",
        ),
        AgencyKind.CONSTRUCTION_AUTHORITY: (
            "Cơ quan cấp giấy phép xây dựng",
            "Building permit authority",
        ),
        AgencyKind.TRAFFIC_POLICE: (
            "Cảnh sát giao thông",
            "Traffic police (driving licences since 2025)",
        ),
        AgencyKind.HEALTH: (
            "Cơ quan, cơ sở y tế",
            "Health authority or health facility",
        ),
    }
)

ORGANISATION_NAMES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        # National bodies by their `VN/GOV/<org>` code: the names staff identities'
        # `org` claims are shown by (an auditor's body, above all) where no registered
        # client names them. Ministries follow the government structure of 2025.
        "VN/GOV/TTCP": ("Thanh tra Chính phủ", "Government Inspectorate"),
        "VN/GOV/KTNN": ("Kiểm toán nhà nước", "State Audit Office"),
        "VN/GOV/VPCP": ("Văn phòng Chính phủ", "Office of the Government"),
        "VN/GOV/BCA": ("Bộ Công an", "Ministry of Public Security"),
        "VN/GOV/BTP": ("Bộ Tư pháp", "Ministry of Justice"),
        "VN/GOV/BTC": ("Bộ Tài chính", "Ministry of Finance"),
        "VN/GOV/BYT": ("Bộ Y tế", "Ministry of Health"),
        "VN/GOV/BNV": ("Bộ Nội vụ", "Ministry of Home Affairs"),
        "VN/GOV/BXD": ("Bộ Xây dựng", "Ministry of Construction"),
        "VN/GOV/BGDDT": ("Bộ Giáo dục và Đào tạo", "Ministry of Education and Training"),
        "VN/GOV/BNNMT": (
            "Bộ Nông nghiệp và Môi trường",
            "Ministry of Agriculture and Environment",
        ),
        "VN/GOV/BHXH": ("Bảo hiểm xã hội Việt Nam", "Viet Nam Social Security"),
    }
)
