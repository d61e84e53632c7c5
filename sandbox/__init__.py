"""Reference agency services: a population database, a business registry, an
insurance agency (X-Road style) and a civil-status registry (GraphQL) over HTTP.

Each is a FastAPI app speaking its agency's own Vietnamese field names, built by
``population.create_app(settings)`` / ``business.create_app(settings)`` /
``insurance.create_app(settings)`` / ``civil.create_app(settings)`` over a deterministic
synthetic :class:`Dataset` (``generate(settings)``). The business and civil registries
serve signed documents (:class:`DocumentStore`): each signs with its own key and
publishes it at ``/.well-known/jwks.json``.

``issuer.create_app(settings)`` is the sandbox identity issuer: an OpenID Connect
issuer without passwords that signs citizen and staff tokens for anyone (demo and tests).
"""

from sandbox._data import BusinessSample, Dataset, Sample, generate
from sandbox._documents import DocumentFields, DocumentStore
from sandbox._identifiers import (
    PersonalIdIssuer,
    TaxCodeIssuer,
    century_sex_digit,
    is_personal_id,
    is_tax_code,
    tax_check_digit,
)
from sandbox._old_provinces import OLD_PROVINCES, OLD_TO_2025
from sandbox._signing import DOCUMENT_TYPE, RegistryKey, jwks, registry_key, sign_document
from sandbox._stats import Stats
from sandbox.config import SandboxSettings

__all__ = [
    "DOCUMENT_TYPE",
    "OLD_PROVINCES",
    "OLD_TO_2025",
    "BusinessSample",
    "Dataset",
    "DocumentFields",
    "DocumentStore",
    "PersonalIdIssuer",
    "RegistryKey",
    "Sample",
    "SandboxSettings",
    "Stats",
    "TaxCodeIssuer",
    "century_sex_digit",
    "generate",
    "is_personal_id",
    "is_tax_code",
    "jwks",
    "registry_key",
    "sign_document",
    "tax_check_digit",
]
