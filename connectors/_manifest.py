"""Connector manifests: what a source provides and how its fields map to canonical ones.

A manifest is YAML or JSON, a union discriminated by `kind`: each kind has its own
settings model (`RestManifest`, `XroadManifest`, `SqlManifest`), and what every kind
shares (entities, mapping, timeouts, limits) lives in `ManifestBase`. Loading one
that is malformed raises `ManifestError` naming the file, the line and the field, so a
bad file stops start-up with a useful message. Secrets are never written in a manifest:
a field that holds one takes `{ref: "env:NAME"}`, `{ref: "file:PATH"}` or
`{ref: "stored:NAME"}` (see `connectors._secrets`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Literal, TypeAlias, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from connectors._expressions import check_expression, descended_roots, expression_roots
from gateway.configfiles import ConfigFileError, config_files, line_of, load_config_file

__all__ = [
    "IDENTIFIER",
    "KINDS_OF_MANIFEST",
    "LIST_WAYS",
    "SCHEMA_PATH",
    "ApiKeyAuth",
    "BatchSpec",
    "BreakerSpec",
    "DatabaseSpec",
    "EntityBase",
    "FieldMap",
    "GraphqlEntity",
    "GraphqlList",
    "GraphqlManifest",
    "HolderKind",
    "HttpManifest",
    "HttpTls",
    "ListBase",
    "Manifest",
    "ManifestBase",
    "ManifestError",
    "MappingSpec",
    "OAuth2ClientCredentials",
    "RateLimitSpec",
    "RestEntity",
    "RestList",
    "RestManifest",
    "SecretRef",
    "SignatureSpec",
    "SqlEntity",
    "SqlJoin",
    "SqlList",
    "SqlManifest",
    "SqlTls",
    "XroadEntity",
    "XroadManifest",
    "XroadService",
    "load_manifest",
    "load_manifests",
    "manifest_schema",
    "manifest_schema_text",
    "parse_manifest",
]

_NAME = re.compile(r"^[a-z][a-z0-9-]{1,39}$")
_SOURCE_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""A plain SQL identifier: table and column names a manifest may give (`fullmatch`)."""
SECRET_ENV_PREFIX: Final = "SOURCE_"  # noqa: S105  # nosec B105: a name prefix
"""The only environment variables a manifest may name: a manifest cannot make the
gateway send its own settings (`GATEWAY_DATABASE_URL`, ...) to a source."""
_STORED_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_SECRET_REF = re.compile(rf"env:SOURCE_[A-Z0-9_]+|file:[^\s/\\][^\s\\]*|stored:{_STORED_NAME}")

LIST_WAYS = ("holder",)
"""How a list of records may be looked up by another key: by the holder (a person's
personal id or an enterprise's tax code), as `landParcels(holder:)` and
`documents(holder:)` ask."""


class ManifestError(ConfigFileError):
    """A manifest that cannot be used; says which file and line."""


class _Strict(BaseModel):
    # Errors name the field, never its value: a value may be a secret written inline.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


def _plain_identifier(value: str) -> str:
    if not IDENTIFIER.fullmatch(value):
        raise ValueError(f"not a plain name ([A-Za-z_][A-Za-z0-9_]*): {value!r}")
    return value


class SecretRef(_Strict):
    """A secret named, never written: `{ref: "env:SOURCE_NAME"}`, `{ref: "file:PATH"}`
    or `{ref: "stored:NAME"}`.

    An environment variable's name starts with `SOURCE_`; a file's path is relative to
    the manifest's own folder and stays in it (an operator may link a mounted secret
    there); a stored secret is one stored encrypted for this connector through
    `PUT /admin/connectors/{name}/secrets/{NAME}` (1-64 letters, digits, `_`, `.`, `-`).
    A manifest can so name only the secrets meant for sources, never the gateway's own
    (its settings, keys and database).
    """

    ref: str = Field(
        json_schema_extra={"pattern": f"^(?:{_SECRET_REF.pattern})$"},
        description="env:SOURCE_NAME, file:PATH relative to the manifest's folder, or "
        "stored:NAME (a secret stored for this connector)",
    )

    @field_validator("ref")
    @classmethod
    def _scoped(cls, value: str) -> str:
        provider, _, name = value.partition(":")
        if provider not in ("env", "file", "stored") or not name:
            raise ValueError('give "env:SOURCE_NAME", "file:PATH" or "stored:NAME"')
        if provider == "stored" and not re.fullmatch(_STORED_NAME, name):
            raise ValueError(
                "a stored secret's name is 1-64 letters, digits, '_', '.' or '-' "
                "(starting with a letter or digit)"
            )
        if provider == "env" and not re.fullmatch(r"SOURCE_[A-Z0-9_]+", name):
            raise ValueError(
                f"an environment variable named by a manifest starts with {SECRET_ENV_PREFIX} "
                "(capitals, digits and _)"
            )
            raise ValueError(
                f"an environment variable named by a manifest starts with {SECRET_ENV_PREFIX}"
            )
        if provider == "file":
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or ".." in parts or not _SECRET_REF.fullmatch(value):
                raise ValueError(
                    "a secret file's path is relative to the manifest's folder and stays in it"
                )
        return value

    @model_validator(mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError(
                "a secret is named, never written in a manifest: "
                'give {ref: "env:NAME"}, {ref: "file:PATH"} or {ref: "stored:NAME"}'
            )
        return value

    @property
    def provider(self) -> str:
        """`env`, `file` or `stored`."""
        return self.ref.split(":", 1)[0]

    @property
    def name(self) -> str:
        """The variable's name, the file's path or the stored secret's name."""
        return self.ref.split(":", 1)[1]


class FieldMap(_Strict):
    """A canonical field read from `from` or computed by `expr`, optionally translated.

    `from` is a source field path (`a.b`); `expr` a JMESPath expression over the
    source record with the gateway's functions (`concat`, `split`, `to_int`,
    `to_string`, `date`, `lookup`, `default`, `as_list`). `values` translates the
    value through a table; `fields` maps the value's own sub-fields (of an object,
    or of each object of a list).
    """

    from_: str | None = Field(default=None, alias="from")
    expr: str | None = Field(default=None, max_length=2000)
    values: dict[str, str | int | bool | None] | None = None
    fields: dict[str, MappingSpec] | None = None

    @field_validator("from_")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not _SOURCE_PATH.fullmatch(value):
            raise ValueError(f"not a source field path: {value!r}")
        return value

    @field_validator("expr")
    @classmethod
    def _expression(cls, value: str | None) -> str | None:
        if value is not None:
            check_expression(value)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> FieldMap:
        if (self.from_ is None) == (self.expr is None):
            raise ValueError("give `from` (a source field) or `expr` (an expression), one of them")
        if self.values is not None and self.fields is not None:
            raise ValueError("give `values` or `fields`, not both")
        return self


def _mapping_kind(value: Any) -> str:
    return "name" if isinstance(value, str) else "map"


# A plain source name, or a table; tagged so a bad table reports its own errors only.
MappingSpec: TypeAlias = Annotated[
    Annotated[str, Field(pattern=_SOURCE_PATH.pattern), Tag("name")]
    | Annotated[FieldMap, Tag("map")],
    Discriminator(_mapping_kind),
]
_TAGS = frozenset(
    {"name", "map", "rest", "sql", "xroad", "graphql", "api_key", "oauth2_client_credentials"}
)
FieldMap.model_rebuild()


class SignatureSpec(_Strict):
    """How the source's records are signed by their issuer (digitized results).

    Each record carries, in `field`, a compact JWS (RFC 7515, EdDSA over Ed25519,
    `typ` `vn-document+jws`) made by the issuing registry; its payload is a JSON object
    whose members are the record's `covers` fields as the source serves them (the
    file's SHA-256 among them). The issuer's public keys are the JWK set at `jwks`: an
    `https://` or `http://` URL, a path on the source's `base_url` (`/.well-known/
    jwks.json`), or `file:PATH` relative to the manifest's folder. A record whose
    signature does not verify, or whose covered fields differ from what was signed, is
    withheld (`DOCUMENT_SIGNATURE_INVALID`); every mapped field must read only covered
    fields, so nothing unsigned is served as part of a verified record.
    """

    field: str = Field(description="The source field holding the compact JWS.")
    covers: list[str] = Field(
        min_length=1, description="The source fields the signature's payload must match."
    )
    jwks: str = Field(description="The issuer's JWK set: URL, /path on base_url, or file:PATH.")
    refresh_seconds: float = Field(
        default=300.0, ge=10, le=86400, description="How long fetched keys are used."
    )

    @field_validator("covers")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each covered field is named once")
        return value

    @field_validator("jwks")
    @classmethod
    def _where(cls, value: str) -> str:
        if value.startswith("file:"):
            if not value[5:]:
                raise ValueError("`file:` names a file")
        elif value.startswith("/"):
            if value.startswith("//"):
                raise ValueError("a path on the source begins with one '/'")
        else:
            _http_url(value)
        return value

    @model_validator(mode="after")
    def _not_self(self) -> SignatureSpec:
        if self.field in self.covers:
            raise ValueError("the signature's own field cannot be among those it covers")
        return self


class EntityBase(_Strict):
    """What every kind says of one canonical entity kind: its key and its fields."""

    key_field: str = Field(description="The source field (or column) holding the key.")
    fields: dict[str, MappingSpec]
    signature: SignatureSpec | None = Field(
        default=None, description="The issuer's signature on each record (HTTP kinds)."
    )

    @model_validator(mode="after")
    def _has_fields(self) -> EntityBase:
        if not self.fields:
            raise ValueError("an entity maps at least one field")
        return self

    def list_ways(self) -> frozenset[str]:
        """The list lookups this entity offers (`holder`)."""
        lists = getattr(self, "lists", None) or {}
        return frozenset(lists)

    def list_holders(self, way: str) -> frozenset[str]:
        """Whose records the list way `way` lists (`person`, `enterprise`)."""
        lists = getattr(self, "lists", None) or {}
        return frozenset(lists[way].holders)

    def by_key(self) -> bool:
        """Whether records can be read by their own key."""
        raise NotImplementedError


class BreakerSpec(_Strict):
    """A source's circuit breaker: open after `failures` failures in a row, try again
    (one call) after `reset_seconds`."""

    failures: int = Field(default=5, ge=1, le=1000)
    reset_seconds: float = Field(default=10.0, gt=0, le=3600)


class RateLimitSpec(_Strict):
    """At most `per_second` calls a second to the source, `burst` of them at once after a
    quiet spell (a token bucket); replicas sharing Redis share the allowance."""

    per_second: float = Field(
        gt=0, le=1_000_000, description="Calls a second the source allows, on average."
    )
    burst: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Calls that may go at once after a quiet spell; absent: `per_second` "
        "rounded up.",
    )

    @property
    def capacity(self) -> int:
        """The size of the bucket: `burst`, or `per_second` rounded up."""
        return self.burst if self.burst is not None else math.ceil(self.per_second)


class ManifestBase(_Strict):
    """What every connector kind shares: identity, entities, mapping, timeouts, limits."""

    # Top-level `x-` keys belong to the author (shared YAML anchors, notes).
    model_config = ConfigDict(json_schema_extra={"patternProperties": {"^x-": {}}})

    kind: str
    name: str
    title: str = ""
    agency: str = ""
    timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    retries: int = Field(default=1, ge=0, le=5)
    max_concurrency: int = Field(default=32, ge=1, le=1024)
    priority: int = Field(default=100, description="Lower wins when two sources give a field.")
    breaker: BreakerSpec = Field(default_factory=BreakerSpec)
    rate_limit: RateLimitSpec | None = Field(
        default=None,
        description="The most calls the source allows (each retry is a call); absent: no limit.",
    )
    tables: dict[str, dict[str, str | int | bool | None]] = Field(
        default_factory=dict, description="Tables the `lookup(value, 'name')` function reads."
    )
    entities: Mapping[str, EntityBase]

    _path: Path | None = PrivateAttr(default=None)
    # What `stored:` references read: set by `connectors._secrets.with_stored_secrets`.
    _stored_secrets: Any = PrivateAttr(default=None)
    endpoint_field: ClassVar[str] = ""
    """The setting `GATEWAY_CONNECTOR_URLS` overrides: `base_url`, `database.url`."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("a name is 2-40 lower-case letters, digits or '-'")
        return value

    @field_validator("tables")
    @classmethod
    def _table_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            _plain_identifier(name)
        return value

    @model_validator(mode="after")
    def _has_entities(self) -> ManifestBase:
        if not self.entities:
            raise ValueError("a manifest provides at least one entity kind")
        return self

    @property
    def path(self) -> Path | None:
        """The file the manifest was read from, if any."""
        return self._path

    def local_path(self, name: str) -> Path:
        """`name` as a path: a relative one is read from the manifest's own folder."""
        path = Path(name)
        if path.is_absolute() or self._path is None:
            return path
        return self._path.parent / path

    @property
    def endpoint(self) -> str:
        """Where the source is: a URL."""
        raise NotImplementedError

    def with_endpoint(self, url: str) -> ManifestBase:
        """A copy reading from `url` instead (`GATEWAY_CONNECTOR_URLS`)."""
        raise NotImplementedError

    def error(self, loc: tuple[str | int, ...], message: str) -> ManifestError:
        """A `ManifestError` about `loc` (a path of keys), naming file, line and field."""
        where = ".".join(str(p) for p in loc) or "(top)"
        if self._path is None:
            return ManifestError(f"manifest {self.name!r}", f"{where}: {message}")
        return ManifestError(self._path, f"{where}: {message}", line=line_of(self._path, loc))


# --- HTTP kinds ----------------------------------------------------------------------


class ApiKeyAuth(_Strict):
    """Send a key in a header on every call."""

    type: Literal["api_key"]
    header: str = Field(default="X-API-Key", pattern=r"^[A-Za-z0-9-]{1,64}$")
    key: SecretRef


class OAuth2ClientCredentials(_Strict):
    """OAuth 2.0 client credentials (RFC 6749 §4.4); the token is kept until it expires."""

    type: Literal["oauth2_client_credentials"]
    token_url: str
    client_id: str
    client_secret: SecretRef
    scope: str | None = None

    @field_validator("token_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)


HttpAuth: TypeAlias = Annotated[ApiKeyAuth | OAuth2ClientCredentials, Field(discriminator="type")]


class HttpTls(_Strict):
    """TLS towards the source: whom to trust, and a client certificate (mutual TLS)."""

    ca_file: str | None = Field(default=None, description="PEM bundle to verify the source by.")
    client_cert: str | None = Field(default=None, description="PEM certificate (public).")
    client_key: SecretRef | None = Field(default=None, description="PEM private key.")

    @model_validator(mode="after")
    def _pair(self) -> HttpTls:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("give `client_cert` and `client_key` together")
        return self


def _http_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/@]+(/\S*)?", value):
        raise ValueError("not an http(s) URL without credentials")
    return value.rstrip("/")


class HttpManifest(ManifestBase):
    """What every kind that speaks HTTP shares: where, how to authenticate, TLS."""

    base_url: str
    health_path: str = "/healthz"
    max_response_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=1024**3)
    auth: HttpAuth | None = None
    tls: HttpTls | None = None

    endpoint_field: ClassVar[str] = "base_url"

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)

    @property
    def endpoint(self) -> str:
        return self.base_url

    def with_endpoint(self, url: str) -> HttpManifest:
        copy = self.model_copy(update={"base_url": _http_url(url)})
        copy._path = self._path
        return copy


class BatchSpec(_Strict):
    """A batch endpoint: POST `{keys_field: [...], fields_field: [...]}`."""

    path: str
    keys_field: str
    fields_field: str | None = None
    results_field: str
    max_size: int = Field(default=50, ge=1, le=1000)


HolderKind: TypeAlias = Literal["person", "enterprise"]


class ListBase(_Strict):
    """What every kind's list way says: whose records it lists."""

    holders: list[HolderKind] = Field(
        default=["person", "enterprise"],
        min_length=1,
        description="Whose records the source lists: people (a personal id), enterprises "
        "(a tax code). A holder of another kind is not asked about.",
    )


class RestList(ListBase):
    """A list lookup by another key: GET `get` (with `{key}`), the list in `list_field`."""

    get: str
    list_field: str | None = Field(
        default=None, description="The member of the answer holding the list (else the body)."
    )

    @field_validator("get")
    @classmethod
    def _get_has_key(cls, value: str) -> str:
        if "{key}" not in value:
            raise ValueError("the `get` path must contain {key}")
        return value


class RestEntity(EntityBase):
    """How one canonical entity kind is looked up at a REST source."""

    get: str | None = Field(default=None, description="Path with {key}, e.g. /v1/x/{key}.")
    batch: BatchSpec | None = None
    fields_param: str | None = Field(
        default=None, description="Query parameter naming the source fields wanted."
    )
    lists: dict[Literal["holder"], RestList] = Field(default_factory=dict)

    @field_validator("get")
    @classmethod
    def _get_has_key(cls, value: str | None) -> str | None:
        if value is not None and "{key}" not in value:
            raise ValueError("the `get` path must contain {key}")
        return value

    @model_validator(mode="after")
    def _has_endpoint(self) -> RestEntity:
        if self.get is None and self.batch is None and not self.lists:
            raise ValueError("an entity needs a `get` path, a `batch` endpoint or `lists`")
        return self

    def by_key(self) -> bool:
        return self.get is not None or self.batch is not None


class RestManifest(HttpManifest):
    """A source with JSON lookup endpoints over HTTP."""

    kind: Literal["rest"]
    entities: dict[str, RestEntity]


# --- X-Road ---------------------------------------------------------------------------

_XROAD_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_XROAD_CLIENT = rf"^{_XROAD_PART}/{_XROAD_PART}/{_XROAD_PART}/{_XROAD_PART}$"


class XroadService(_Strict):
    """The X-Road member subsystem that provides the services: where requests are routed."""

    instance: str = Field(pattern=f"^{_XROAD_PART}$", description="X-Road instance, e.g. VN.")
    member_class: str = Field(pattern=f"^{_XROAD_PART}$", description="e.g. GOV.")
    member_code: str = Field(pattern=f"^{_XROAD_PART}$", description="e.g. BHXH.")
    subsystem: str = Field(pattern=f"^{_XROAD_PART}$", description="e.g. INSURANCE.")

    def path(self, code: str, version: str | None) -> str:
        """`/r1/{instance}/{class}/{member}/{subsystem}/{service}[/{version}]`."""
        parts = [self.instance, self.member_class, self.member_code, self.subsystem, code]
        if version is not None:
            parts.append(version)
        return "/r1/" + "/".join(parts)


class XroadEntity(RestEntity):
    """A REST entity served as an X-Road service: `get`, `batch.path` and `lists` paths
    are relative to the service's own path, `/r1/{service id}/{service}[/{version}]`."""

    service: str = Field(pattern=f"^{_XROAD_PART}$", description="The service code.")
    version: str | None = Field(default=None, pattern=f"^{_XROAD_PART}$")

    def rest_entity(self, service: XroadService) -> RestEntity:
        """The same entity with its paths under the service's X-Road path."""
        prefix = service.path(self.service, self.version)
        batch = self.batch
        if batch is not None:
            batch = batch.model_copy(update={"path": prefix + batch.path})
        lists = {
            way: spec.model_copy(update={"get": prefix + spec.get})
            for way, spec in self.lists.items()
        }
        data = {name: getattr(self, name) for name in RestEntity.model_fields}
        data.update(get=None if self.get is None else prefix + self.get, batch=batch, lists=lists)
        return RestEntity.model_construct(**data)


class XroadManifest(HttpManifest):
    """A source behind an X-Road security server (REST services, `/r1/` paths).

    `base_url` is the gateway's own security server. Every call names `client`, the
    gateway's X-Road subsystem, in `X-Road-Client`: the security server grants access to
    that subsystem, so the calling system's id (`FetchContext.client_id`) is not sent
    there; it stays in the gateway's audit record, joined by `X-Road-Id`. The officer
    and case go as `X-Road-UserId` and `X-Road-Issue`, as for the `rest` kind.
    """

    kind: Literal["xroad"]
    client: str = Field(
        pattern=_XROAD_CLIENT,
        description="The gateway's X-Road client subsystem, INSTANCE/CLASS/MEMBER/SUBSYSTEM.",
    )
    service: XroadService
    entities: dict[str, XroadEntity]

    def rest_manifest(self) -> RestManifest:
        """The same source as a `rest` manifest whose paths are the X-Road paths."""
        fields = {name: getattr(self, name) for name in HttpManifest.model_fields}
        fields["kind"] = "rest"
        fields["entities"] = {
            kind: entity.rest_entity(self.service) for kind, entity in self.entities.items()
        }
        rest = RestManifest.model_construct(**fields)
        rest._path = self._path
        return rest

    def with_endpoint(self, url: str) -> XroadManifest:
        copy = self.model_copy(update={"base_url": _http_url(url)})
        copy._path = self._path
        return copy


# --- GraphQL ---------------------------------------------------------------------------

GRAPHQL_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")
"""A GraphQL Name (`fullmatch`): the field and argument names a manifest may give."""
_GRAPHQL_TYPE = r"^\[?[_A-Za-z][_0-9A-Za-z]*!?\]?!?$"
# Where an expression reads into a value (`a.b`, `a[0]`, `a[*]`): that root is an object
# or a list, and its sub-selection must be written in `select`.
_DESCENDING = frozenset(
    {
        "subexpression",
        "index_expression",
        "projection",
        "value_projection",
        "filter_projection",
        "flatten",
        "slice",
    }
)


def _graphql_name(value: str) -> str:
    if not GRAPHQL_NAME.fullmatch(value):
        raise ValueError(f"not a GraphQL name ([_A-Za-z][_0-9A-Za-z]*): {value!r}")
    return value


def _check_selection(text: str) -> str:
    """A sub-selection `{ a b { c } }` as written in `select`: no variables or fragments."""
    from graphql import GraphQLSyntaxError, parse  # only GraphQL manifests

    stripped = text.strip()
    if not stripped.startswith("{") or "$" in stripped or "..." in stripped or "#" in stripped:
        raise ValueError(
            "a selection is written `{ field sub { field } }`, without variables, "
            "fragments or comments"
        )
    try:
        parse("query Q { x " + stripped + " }", no_location=True)
    except GraphQLSyntaxError as exc:
        raise ValueError(f"not a GraphQL selection: {exc.message}") from None
    return stripped


class GraphqlList(ListBase):
    """A list lookup by another key: the root field `field(argument: $key)`, a list."""

    field: str
    argument: str
    argument_type: str = Field(default="String!", pattern=_GRAPHQL_TYPE)

    @field_validator("field", "argument")
    @classmethod
    def _names(cls, value: str) -> str:
        return _graphql_name(value)


class GraphqlEntity(EntityBase):
    """How one canonical entity kind is queried at a GraphQL source.

    `query_field(key_argument: $key)` answers one record; `batch_field(batch_argument:
    $keys)`, if given, a list of records for a list of keys. The mapping's source roots
    are the upstream record's fields. An object read by a path (`gcn.so_seri`) or mapped
    by `fields` is selected with the sub-fields the mapping reads; an expression that
    reads into a root (`a.b`, `a[*]`) needs that root's sub-selection written in
    `select` (`{root: "{ sub { field } }"}`), and one that reads the whole record (`@`)
    cannot be asked of a GraphQL source.
    """

    query_field: str | None = Field(default=None, description="Root field for one key.")
    key_argument: str | None = Field(default=None, description="Its argument, the key.")
    key_type: str = Field(default="String!", pattern=_GRAPHQL_TYPE)
    batch_field: str | None = Field(default=None, description="Root field for a list of keys.")
    batch_argument: str | None = None
    max_batch: int = Field(default=50, ge=1, le=1000)
    lists: dict[Literal["holder"], GraphqlList] = Field(default_factory=dict)
    select: dict[str, str] = Field(
        default_factory=dict, description="{upstream root: its sub-selection, `{ a b { c } }`}"
    )

    @field_validator("key_field", "query_field", "key_argument", "batch_field", "batch_argument")
    @classmethod
    def _names(cls, value: str | None) -> str | None:
        return None if value is None else _graphql_name(value)

    @field_validator("select")
    @classmethod
    def _selections(cls, value: dict[str, str]) -> dict[str, str]:
        for root, text in value.items():
            _graphql_name(root)
            _check_selection(text)
        return value

    @model_validator(mode="after")
    def _complete(self) -> GraphqlEntity:
        if (self.query_field is None) != (self.key_argument is None):
            raise ValueError("give `query_field` and `key_argument` together")
        if (self.batch_field is None) != (self.batch_argument is None):
            raise ValueError("give `batch_field` and `batch_argument` together")
        if self.query_field is None and self.batch_field is None and not self.lists:
            raise ValueError("an entity needs a `query_field`, a `batch_field` or `lists`")
        for name, spec in self.fields.items():
            _check_graphql_mapping(name, spec, self.select)
        return self

    def by_key(self) -> bool:
        return self.query_field is not None or self.batch_field is not None


def _check_graphql_mapping(name: str, spec: MappingSpec, select: Mapping[str, str]) -> None:
    """Refuse a mapping whose upstream selection cannot be derived."""
    if isinstance(spec, str):
        return  # a path of names, checked as a source path
    if spec.expr is not None:
        roots = expression_roots(spec.expr)
        if roots is None:
            raise ValueError(
                f"field {name!r}: an expression reading the whole record (@) cannot be "
                "asked of a GraphQL source; read named fields"
            )
        for root in sorted(roots):
            if not GRAPHQL_NAME.fullmatch(root):
                raise ValueError(f"field {name!r}: not a GraphQL name: {root!r}")
        objects = descended_roots(spec.expr) | (roots if spec.fields is not None else set())
        missing = sorted(r for r in objects if r not in select)
        if missing:
            raise ValueError(
                f"field {name!r}: its expression reads into {', '.join(missing)}; write "
                'the sub-fields to ask for in `select` ({root: "{ sub }"})'
            )
        return
    if spec.fields is not None:
        for inner, inner_spec in spec.fields.items():
            _check_graphql_mapping(f"{name}.{inner}", inner_spec, {})


class GraphqlManifest(HttpManifest):
    """A GraphQL source: queries POSTed as JSON `{query, variables}` to `path`."""

    kind: Literal["graphql"]
    # `path` in the manifest (`ManifestBase.path` is the file the manifest was read from).
    endpoint_path: str = Field(
        default="/graphql",
        alias="path",
        pattern=r"^/[A-Za-z0-9._~/-]*$",
        description="Where queries are POSTed, under `base_url`.",
    )
    entities: dict[str, GraphqlEntity]


# --- SQL -----------------------------------------------------------------------------


class SqlTls(_Strict):
    """TLS towards the database server (PostgreSQL)."""

    mode: Literal["require", "verify-ca", "verify-full"] = "verify-full"
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: SecretRef | None = None

    @model_validator(mode="after")
    def _pair(self) -> SqlTls:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("give `client_cert` and `client_key` together")
        return self


class DatabaseSpec(_Strict):
    """Where the database is and how to sign in; the password is a secret reference."""

    url: str = Field(
        description="sqlite:///PATH (opened read-only) or postgresql://HOST[:PORT]/DB, "
        "without user or password"
    )
    schema_: str | None = Field(default=None, alias="schema", description="PostgreSQL schema.")
    user: str | SecretRef | None = None
    password: SecretRef | None = None
    tls: SqlTls | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _database_url(value)

    @field_validator("schema_")
    @classmethod
    def _schema(cls, value: str | None) -> str | None:
        return None if value is None else _plain_identifier(value)


def _database_url(value: str) -> str:
    if value.startswith("sqlite:///") and len(value) > len("sqlite:///"):
        return value
    match = re.fullmatch(r"postgresql://([^/\s]+)/([A-Za-z0-9_-]+)", value)
    if match is None:
        raise ValueError("give sqlite:///PATH or postgresql://HOST[:PORT]/DATABASE")
    if "@" in match.group(1):
        raise ValueError(
            "user and password go in `user` and `password` (a secret reference), not in the URL"
        )
    return value


class SqlJoin(_Strict):
    """Rows of another table matched to each row of the entity's table.

    `match` pairs this table's column with the entity table's column (not `on`, which
    YAML reads as the boolean true). The name under
    which the rows appear (a key of `joins` or `children`) is a source field name the
    mapping reads: an object for a join, a list of objects for children.
    """

    table: str
    match: dict[str, str] = Field(description="{column of this table: column of the entity table}")
    order_by: str | None = None

    @field_validator("table", "order_by")
    @classmethod
    def _plain(cls, value: str | None) -> str | None:
        return None if value is None else _plain_identifier(value)

    @field_validator("match")
    @classmethod
    def _plain_pairs(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) != 1:
            raise ValueError("`match` pairs one column of this table with one of the entity's")
        for child, parent in value.items():
            _plain_identifier(child)
            _plain_identifier(parent)
        return value

    @property
    def column(self) -> str:
        """This table's column."""
        return next(iter(self.match))

    @property
    def parent_column(self) -> str:
        """The entity table's column it matches."""
        return next(iter(self.match.values()))


class SqlList(ListBase):
    """A list lookup by another key: rows whose `column` holds it, in the entity's table
    or, with `through`, in one of its `children` (parcels by co-holder)."""

    column: str
    through: str | None = None

    @field_validator("column", "through")
    @classmethod
    def _plain(cls, value: str | None) -> str | None:
        return None if value is None else _plain_identifier(value)


class SqlEntity(EntityBase):
    """How one canonical entity kind is read from a table, with its joins and children."""

    table: str
    joins: dict[str, SqlJoin] = Field(default_factory=dict)
    children: dict[str, SqlJoin] = Field(default_factory=dict)
    lists: dict[Literal["holder"], SqlList] = Field(default_factory=dict)

    @field_validator("table", "key_field")
    @classmethod
    def _plain(cls, value: str) -> str:
        return _plain_identifier(value)

    @field_validator("joins", "children")
    @classmethod
    def _plain_names(cls, value: dict[str, SqlJoin]) -> dict[str, SqlJoin]:
        for name in value:
            _plain_identifier(name)
        return value

    @model_validator(mode="after")
    def _through_is_a_child(self) -> SqlEntity:
        if self.signature is not None:
            raise ValueError("`signature` is read by the HTTP kinds (rest, xroad, graphql)")
        overlap = set(self.joins) & set(self.children)
        if overlap:
            raise ValueError(f"a name is a join or children, not both: {sorted(overlap)}")
        for way in self.lists.values():
            if way.through is not None and way.through not in self.children:
                raise ValueError(f"`through: {way.through}` names none of `children`")
        return self

    def by_key(self) -> bool:
        return True


class SqlManifest(ManifestBase):
    """A relational database read through SQLAlchemy, read-only; no SQL text."""

    kind: Literal["sql"]
    database: DatabaseSpec
    entities: dict[str, SqlEntity]

    endpoint_field: ClassVar[str] = "database.url"

    @property
    def endpoint(self) -> str:
        return self.database.url

    def with_endpoint(self, url: str) -> SqlManifest:
        database = self.database.model_copy(update={"url": _database_url(url)})
        copy = self.model_copy(update={"database": database})
        copy._path = self._path
        return copy


def _kind_of(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("kind")
        return kind if isinstance(kind, str) else None
    return getattr(value, "kind", None)


KINDS_OF_MANIFEST: dict[str, type[ManifestBase]] = {
    "rest": RestManifest,
    "sql": SqlManifest,
    "xroad": XroadManifest,
    "graphql": GraphqlManifest,
}


def _known_kind(value: Any) -> Any:
    kind = _kind_of(value)
    if kind not in KINDS_OF_MANIFEST:
        raise PydanticCustomError(
            "unknown_kind",
            "unknown kind {kind}; the kinds are {kinds}",
            {"kind": repr(kind), "kinds": ", ".join(KINDS_OF_MANIFEST)},
        )
    return value


Manifest: TypeAlias = Annotated[
    Union[  # noqa: UP007  # a union of tagged models, which `|` cannot tag
        Annotated[RestManifest, Tag("rest")],
        Annotated[SqlManifest, Tag("sql")],
        Annotated[XroadManifest, Tag("xroad")],
        Annotated[GraphqlManifest, Tag("graphql")],
    ],
    Discriminator(_kind_of),
    BeforeValidator(_known_kind),
]
"""A validated connector manifest of any kind."""
_ADAPTER: TypeAdapter[ManifestBase] = TypeAdapter(
    Manifest, config=ConfigDict(hide_input_in_errors=True)
)


def parse_manifest(data: Any) -> ManifestBase:
    """Validate a manifest given as data (raises `pydantic.ValidationError`)."""
    return _ADAPTER.validate_python(data)


SCHEMA_PATH: Final = Path(__file__).parent / "manifest.schema.json"
"""Where the exported JSON Schema of manifests is kept (checked in, checked in CI)."""


def manifest_schema_text() -> str:
    """The JSON Schema of manifests as the checked-in file holds it."""
    return json.dumps(manifest_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema of manifests, for agencies' editors (`connectors/manifest.schema.json`)."""
    schema = _ADAPTER.json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Connector manifest"
    schema["description"] = (
        "A connector manifest of the gateway: one source, what it provides and how its "
        "fields map to the canonical schema."
    )
    return schema


def load_manifest(path: Path) -> ManifestBase:
    """Read and validate one manifest file."""
    manifest: ManifestBase = load_config_file(
        path, _ADAPTER, error=ManifestError, what="manifest", ignore_loc=_TAGS
    )
    manifest._path = path
    return manifest


def load_manifests(directory: Path) -> list[ManifestBase]:
    """Every `*.yaml`, `*.yml` and `*.json` manifest in `directory`, sorted by file name."""
    files = config_files(directory, error=ManifestError)
    manifests = [load_manifest(p) for p in files]
    seen: dict[str, Path] = {}
    for path, manifest in zip(files, manifests, strict=True):
        if manifest.name in seen:
            raise ManifestError(
                path, f"name {manifest.name!r} is already used by {seen[manifest.name]}"
            )
        seen[manifest.name] = path
    return manifests
