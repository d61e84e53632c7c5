"""Connector manifests: what a source provides and how its fields map to canonical ones.

A manifest is YAML or JSON. Loading one that is malformed raises `ManifestError`
naming the file and the line, so a bad file stops start-up with a useful message.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, TypeAlias

import orjson
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

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


class ManifestError(ValueError):
    """A manifest that cannot be used; says which file and line."""

    def __init__(self, path: Path | str, message: str, *, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}")


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


def _node_line(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the YAML node at `loc`, or of its nearest ancestor."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
            if child is None:
                # The key itself may be the problem (an unknown field): point at it.
                key = next((k for k, _ in node.value if k.value == part), None)
                return key.start_mark.line + 1 if key is not None else line
            node = child
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
        else:
            return line
        line = node.start_mark.line + 1
    return line


def load_manifest(path: Path) -> Manifest:
    """Read and validate one manifest file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(path, f"cannot read: {exc.strerror}") from exc
    node: yaml.Node | None = None
    try:
        if path.suffix == ".json":
            data: Any = orjson.loads(text)
            # JSON is YAML too: composing it only serves to find lines for errors.
            try:
                node = yaml.compose(text, Loader=yaml.SafeLoader)
            except yaml.YAMLError:
                node = None
        else:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
    except orjson.JSONDecodeError as exc:
        raise ManifestError(path, f"not valid JSON: {exc.msg}", line=exc.lineno) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ManifestError(path, f"not valid YAML: {exc}", line=line) from exc
    if not isinstance(data, dict):
        raise ManifestError(path, "a manifest is a mapping", line=1)
    # Top-level `x-` keys are the author's own (shared YAML anchors, notes): not read.
    data = {k: v for k, v in data.items() if not str(k).startswith("x-")}
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(
            p for p in first["loc"] if p not in _TAGS and not str(p).startswith("function-")
        )
        where = ".".join(str(p) for p in loc) or "(top)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ManifestError(
            path, f"{where}: {first['msg']}{more}", line=_node_line(node, loc)
        ) from exc


def load_manifests(directory: Path) -> list[Manifest]:
    """Every `*.yaml`, `*.yml` and `*.json` manifest in `directory`, sorted by file name."""
    if not directory.is_dir():
        raise ManifestError(directory, "no such directory")
    files = sorted(
        p for p in directory.iterdir() if p.suffix in {".yaml", ".yml", ".json"} and p.is_file()
    )
    manifests = [load_manifest(p) for p in files]
    seen: dict[str, Path] = {}
    for path, manifest in zip(files, manifests, strict=True):
        if manifest.name in seen:
            raise ManifestError(
                path, f"name {manifest.name!r} is already used by {seen[manifest.name]}"
            )
        seen[manifest.name] = path
    return manifests
