"""Connectors: how the gateway reads agencies' databases.

The protocol is in `connectors.base`; `RestConnector` is the built-in `rest` kind.
"""

from connectors._headers import header_value, purpose_headers
from connectors._http import source_client
from connectors._loader import BatchLoader
from connectors._manifest import (
    BatchSpec,
    EntitySpec,
    FieldMap,
    Manifest,
    ManifestError,
    load_manifest,
    load_manifests,
)
from connectors._registry import (
    CanonicalTree,
    ConnectorRegistry,
    Route,
    build_registry,
    check_kind,
    check_manifest,
    connector_kinds,
)
from connectors._rest import RestConnector
from connectors.base import Connector, ConnectorFactory, FetchContext, FetchResult, Health

__all__ = [
    "BatchLoader",
    "BatchSpec",
    "CanonicalTree",
    "Connector",
    "ConnectorFactory",
    "ConnectorRegistry",
    "EntitySpec",
    "FetchContext",
    "FetchResult",
    "FieldMap",
    "Health",
    "Manifest",
    "ManifestError",
    "RestConnector",
    "Route",
    "build_registry",
    "check_kind",
    "check_manifest",
    "connector_kinds",
    "header_value",
    "load_manifest",
    "load_manifests",
    "purpose_headers",
    "source_client",
]
