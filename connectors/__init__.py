"""Connectors: how the gateway reads agencies' databases.

The protocol is in `connectors.base`; `RestConnector` is the built-in `rest` kind,
`XroadConnector` the `xroad` kind (REST services behind an X-Road security server),
`GraphqlConnector` the `graphql` kind (a remote GraphQL source), and
`HttpCredentials` authenticates every kind that speaks HTTP. `LocalLimits` and
`RedisLimits` keep the permits of the sources' rate limits (`build_registry`).
"""

from connectors._auth import HttpCredentials
from connectors._graphql_kind import GraphqlConnector
from connectors._headers import header_value, purpose_headers
from connectors._http import source_client
from connectors._loader import BatchLoader
from connectors._manifest import (
    SCHEMA_PATH,
    BatchSpec,
    EntityBase,
    FieldMap,
    GraphqlEntity,
    GraphqlManifest,
    Manifest,
    ManifestBase,
    ManifestError,
    RateLimitSpec,
    RestEntity,
    RestManifest,
    SecretRef,
    SqlEntity,
    SqlManifest,
    XroadManifest,
    load_manifest,
    load_manifests,
    manifest_schema,
    manifest_schema_text,
    parse_manifest,
)
from connectors._ratelimit import LocalLimits, RedisLimits, SourceLimiter, SourceLimits
from connectors._registry import (
    CanonicalTree,
    ConnectorRegistry,
    Route,
    build_registry,
    check_kind,
    check_manifest,
    connector_kinds,
)
from connectors._resilience import deadline_scope
from connectors._rest import RestConnector
from connectors._secrets import Secret, SecretUnavailable, resolve_secret, stored_refs
from connectors._sql import SqlConnector
from connectors._xroad import XroadConnector
from connectors.base import (
    Connector,
    ConnectorFactory,
    EvidenceSink,
    FetchContext,
    FetchResult,
    Health,
)

__all__ = [
    "SCHEMA_PATH",
    "BatchLoader",
    "BatchSpec",
    "CanonicalTree",
    "Connector",
    "ConnectorFactory",
    "ConnectorRegistry",
    "EntityBase",
    "EvidenceSink",
    "FetchContext",
    "FetchResult",
    "FieldMap",
    "GraphqlConnector",
    "GraphqlEntity",
    "GraphqlManifest",
    "Health",
    "HttpCredentials",
    "LocalLimits",
    "Manifest",
    "ManifestBase",
    "ManifestError",
    "RateLimitSpec",
    "RedisLimits",
    "RestConnector",
    "RestEntity",
    "RestManifest",
    "Route",
    "Secret",
    "SecretRef",
    "SecretUnavailable",
    "SourceLimiter",
    "SourceLimits",
    "SqlConnector",
    "SqlEntity",
    "SqlManifest",
    "XroadConnector",
    "XroadManifest",
    "build_registry",
    "check_kind",
    "check_manifest",
    "connector_kinds",
    "deadline_scope",
    "header_value",
    "load_manifest",
    "load_manifests",
    "manifest_schema",
    "manifest_schema_text",
    "parse_manifest",
    "purpose_headers",
    "resolve_secret",
    "source_client",
    "stored_refs",
]
