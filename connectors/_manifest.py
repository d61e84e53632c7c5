"""Connector manifests: what a source provides and how its fields map to canonical ones.

A manifest is YAML or JSON. Loading one that is malformed raises `ManifestError`
naming the file and the line, so a bad file stops start-up with a useful message.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from gateway.configfiles import ConfigFileError, config_files, load_config_file

__all__ = [
    "BatchSpec",
    "EntitySpec",
    "FieldMap",
    "Manifest",
    "ManifestError",
    "MappingSpec",
    "load_manifest",
    "load_manifests",
]

_NAME = re.compile(r"^[a-z][a-z0-9-]{1,39}$")
_SOURCE_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class ManifestError(ConfigFileError):
    """A manifest that cannot be used; says which file and line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldMap(_Strict):
    """A canonical field read from `from`, optionally translating values or sub-fields."""

    from_: str = Field(alias="from")
    values: dict[str, str | int | bool | None] | None = None
    fields: dict[str, MappingSpec] | None = None

    @field_validator("from_")
    @classmethod
    def _path(cls, value: str) -> str:
        if not _SOURCE_PATH.match(value):
            raise ValueError(f"not a source field path: {value!r}")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> FieldMap:
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
_TAGS = frozenset({"name", "map"})
FieldMap.model_rebuild()


class BatchSpec(_Strict):
    """A batch endpoint: POST `{keys_field: [...], fields_field: [...]}`."""

    path: str
    keys_field: str
    fields_field: str | None = None
    results_field: str
    max_size: int = Field(default=50, ge=1, le=1000)


class EntitySpec(_Strict):
    """How one canonical entity kind is looked up at the source."""

    key_field: str
    get: str | None = Field(default=None, description="Path with {key}, e.g. /v1/x/{key}.")
    batch: BatchSpec | None = None
    fields_param: str | None = Field(
        default=None, description="Query parameter naming the source fields wanted."
    )
    many: bool = Field(
        default=False,
        description="The source answers a list of records for a key (e.g. parcels by holder).",
    )
    list_field: str | None = Field(
        default=None, description="With `many`: the member of the answer holding the list."
    )
    fields: dict[str, MappingSpec]

    @field_validator("get")
    @classmethod
    def _get_has_key(cls, value: str | None) -> str | None:
        if value is not None and "{key}" not in value:
            raise ValueError("the `get` path must contain {key}")
        return value

    @model_validator(mode="after")
    def _has_endpoint(self) -> EntitySpec:
        if self.get is None and self.batch is None:
            raise ValueError("an entity needs a `get` path, a `batch` endpoint or both")
        if self.many and (self.get is None or self.batch is not None):
            raise ValueError("an entity with `many` is read with `get` only")
        if self.list_field is not None and not self.many:
            raise ValueError("`list_field` goes with `many: true`")
        if not self.fields:
            raise ValueError("an entity maps at least one field")
        return self


class Manifest(_Strict):
    """A validated connector manifest."""

    name: str
    kind: str
    title: str = ""
    agency: str = ""
    base_url: str
    timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    retries: int = Field(default=1, ge=0, le=5)
    max_concurrency: int = Field(default=32, ge=1, le=1024)
    priority: int = Field(default=100, description="Lower wins when two sources give a field.")
    health_path: str = "/healthz"
    max_response_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=1024**3)
    entities: dict[str, EntitySpec]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("a name is 2-40 lower-case letters, digits or '-'")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _has_entities(self) -> Manifest:
        if not self.entities:
            raise ValueError("a manifest provides at least one entity kind")
        return self


def load_manifest(path: Path) -> Manifest:
    """Read and validate one manifest file."""
    return load_config_file(path, Manifest, error=ManifestError, what="manifest", ignore_loc=_TAGS)


def load_manifests(directory: Path) -> list[Manifest]:
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
